import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** Why a connection was closed to stay within the cap. */
export type ShedReason =
  /** An older connection not busy with a request, closed to make room for a new one. */
  | "oldest-not-busy"
  /** The new connection itself: every other connection is busy with a request. */
  | "newcomer";

export interface ConnectionCapOptions {
  maxConnections: number;
  /** Called for every connection closed to stay within the cap. */
  onShed?: (reason: ShedReason, open: number) => void;
}

/**
 * Holds `server` to `maxConnections` open connections without letting slow or idle clients lock
 * everyone else out. When a new connection goes over the cap, the oldest connection that is not
 * busy with a request is closed: one still sending its request head (as a slow-loris client does,
 * sending a header line now and then) or one idle between keep-alive requests. Only when every
 * other connection is busy with a request (a reply being awaited) is the newcomer closed instead.
 */
export function capConnections(server: Server, options: ConnectionCapOptions): void {
  const { maxConnections, onShed } = options;
  const open = new Set<Socket>();
  // Connections without a request in progress, oldest first (a Set keeps insertion order).
  const notBusy = new Set<Socket>();
  const requestsInProgress = new Map<Socket, number>();

  const forget = (socket: Socket) => {
    open.delete(socket);
    notBusy.delete(socket);
    requestsInProgress.delete(socket);
  };

  // Registered after node's own listener, so the socket is fully set up when it may be closed.
  server.on("connection", (socket: Socket) => {
    open.add(socket);
    notBusy.add(socket);
    socket.once("close", () => forget(socket));
    if (open.size <= maxConnections) return;
    const [oldest] = notBusy;
    if (oldest === undefined) return; // cannot happen: the newcomer is not busy
    forget(oldest);
    oldest.destroy();
    onShed?.(oldest === socket ? "newcomer" : "oldest-not-busy", open.size);
  });

  server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket;
    if (!open.has(socket)) return;
    requestsInProgress.set(socket, (requestsInProgress.get(socket) ?? 0) + 1);
    notBusy.delete(socket);
    response.once("close", () => {
      const left = (requestsInProgress.get(socket) ?? 1) - 1;
      if (left > 0) {
        requestsInProgress.set(socket, left);
        return;
      }
      requestsInProgress.delete(socket);
      // Idle again (keep-alive): among the first to go, after those idle for longer.
      if (open.has(socket) && !socket.destroyed) notBusy.add(socket);
    });
  });
}
