import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import { DispatchError, describeError } from "../../core/errors.js";

/** Anything with hono's `fetch`: the app `createHttpApi` returns. */
export interface FetchApp {
  fetch(request: Request, env?: unknown): Response | Promise<Response>;
}

export interface HttpServerOptions {
  app: FetchApp;
  /** 0 picks a free port (tests); the daemon passes `port` from config or DISPATCH_PORT. */
  port: number;
  /** Default 127.0.0.1: the API is local only. */
  host?: string;
  /** How long `close()` lets requests in flight finish before cutting them off. Default 5000. */
  closeGraceMs?: number;
}

export interface HttpServer {
  /** The port actually bound (useful with port 0). */
  port: number;
  /**
   * Stops listening, ends idle keep-alive connections at once and busy ones once their response
   * is sent (or after `closeGraceMs`), and resolves when every connection is gone.
   */
  close(): Promise<void>;
}

const DEFAULT_CLOSE_GRACE_MS = 5_000;

export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const host = options.host ?? "127.0.0.1";
  const graceMs = options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;
  const listener = getRequestListener((request, env) => options.app.fetch(request, env), {
    hostname: host,
  });
  const server = createServer((request, response) => {
    // The adapter answers errors itself; should it still reject, drop the connection.
    listener(request, response).catch(() => response.destroy());
  });

  // Responses not yet finished, so that close() can ask for `Connection: close` on each.
  const inFlight = new Set<ServerResponse>();
  let closing: Promise<void> | undefined;
  server.prependListener("request", (_request, response: ServerResponse) => {
    if (closing !== undefined) response.shouldKeepAlive = false;
    inFlight.add(response);
    response.once("close", () => inFlight.delete(response));
  });

  await listen(server, options.port, host);
  const port = (server.address() as AddressInfo).port;

  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve, reject) => {
      const cutOff = setTimeout(() => server.closeAllConnections(), graceMs);
      cutOff.unref();
      // A connection whose response is still on its way must not stay open for reuse.
      for (const response of inFlight) response.shouldKeepAlive = false;
      server.close((error) => {
        clearTimeout(cutOff);
        if (error) reject(error);
        else resolve();
      });
      server.closeIdleConnections();
    });
    return closing;
  };

  return { port, close };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      server.off("listening", onListening);
      reject(listenError(error, port, host));
    };
    const onListening = () => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(port, host);
  });
}

function listenError(error: NodeJS.ErrnoException, port: number, host: string): DispatchError {
  const howToChange =
    'Set another port with "port" in ~/dispatch/config.json or the DISPATCH_PORT environment variable.';
  if (error.code === "EADDRINUSE") {
    return new DispatchError(
      "port_in_use",
      `Port ${port} on ${host} is already in use (is another dispatch running?). ` +
        `Stop whatever holds it, or ${howToChange.charAt(0).toLowerCase()}${howToChange.slice(1)}`,
      { cause: error },
    );
  }
  if (error.code === "EACCES") {
    return new DispatchError(
      "port_forbidden",
      `Not allowed to listen on port ${port} on ${host}. ${howToChange}`,
      { cause: error },
    );
  }
  return new DispatchError(
    "listen_failed",
    `Cannot listen on ${host}:${port}: ${describeError(error)}. ${howToChange}`,
    { cause: error },
  );
}
