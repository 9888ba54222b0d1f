import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** Which connection was closed to stay within the cap. */
export type ShedReason =
  /** The oldest connection that has not yet sent one whole request head (slow-loris). */
  | "half-sent"
  /** The oldest connection idle between keep-alive requests (there was no half-sent one). */
  | "idle"
  /** The new connection itself: every other connection is busy with a request. */
  | "newcomer";

export interface ConnectionCapOptions {
  maxConnections: number;
  /** Called for every connection closed to stay within the cap. */
  onShed?: (reason: ShedReason, open: number) => void;
}

/**
 * Holds `server` to `maxConnections` open connections without letting slow or idle clients lock
 * everyone else out. When a new connection goes over the cap, one older connection not busy with
 * a request is closed to make room: the oldest of those that have not yet sent a whole request
 * head (as a slow-loris client does, sending a header line now and then), else the oldest idle
 * keep-alive one. A connection that has been served keeps its place while half-sent ones remain:
 * a client's pooled connection may carry its next request at any moment. Only when every other
 * connection is busy with a request (a reply being awaited) is the newcomer closed instead.
 */
export function capConnections(server: Server, options: ConnectionCapOptions): void {
  const { maxConnections, onShed } = options;
  const open = new Set<Socket>();
  // Oldest first (a Set keeps insertion order): connections without a whole request head yet,
  // and connections idle between keep-alive requests.
  const halfSent = new Set<Socket>();
  const idle = new Set<Socket>();
  const requestsInProgress = new Map<Socket, number>();

  const forget = (socket: Socket) => {
    open.delete(socket);
    halfSent.delete(socket);
    idle.delete(socket);
    requestsInProgress.delete(socket);
  };
  const oldestOther = (sockets: Set<Socket>, newcomer: Socket): Socket | undefined => {
    for (const socket of sockets) if (socket !== newcomer) return socket;
    return undefined;
  };

  // Registered after node's own listener, so the socket is fully set up when it may be closed.
  server.on("connection", (socket: Socket) => {
    open.add(socket);
    halfSent.add(socket);
    socket.once("close", () => forget(socket));
    if (open.size <= maxConnections) return;
    const olderHalfSent = oldestOther(halfSent, socket);
    const olderIdle = olderHalfSent === undefined ? oldestOther(idle, socket) : undefined;
    const shed = olderHalfSent ?? olderIdle ?? socket;
    forget(shed);
    shed.destroy();
    onShed?.(olderHalfSent ? "half-sent" : olderIdle ? "idle" : "newcomer", open.size);
  });

  server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    const socket = request.socket;
    if (!open.has(socket)) return;
    requestsInProgress.set(socket, (requestsInProgress.get(socket) ?? 0) + 1);
    halfSent.delete(socket);
    idle.delete(socket);
    response.once("close", () => {
      const left = (requestsInProgress.get(socket) ?? 1) - 1;
      if (left > 0) {
        requestsInProgress.set(socket, left);
        return;
      }
      requestsInProgress.delete(socket);
      if (open.has(socket) && !socket.destroyed) idle.add(socket);
    });
  });
}
