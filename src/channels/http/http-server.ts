import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { getRequestListener } from "@hono/node-server";
import { STATIC_DEFAULTS } from "../../config/schema.js";
import { DispatchError, describeError } from "../../utils/errors.js";
import type { Logger } from "../../logging/logger.js";
import { createHostCheck, type HostCheck } from "./allowed-hosts.js";
import { capConnections, type ShedReason } from "./connection-cap.js";
import { toHttpError } from "./http-errors.js";

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
  /**
   * Host names served besides 127.0.0.1, localhost and [::1] (`channels.http.allowedHosts`). A
   * request addressed to any other name gets 421 `host_not_allowed`.
   */
  allowedHosts?: readonly string[];
  /** What a slow or greedy client may hold; each defaults to its `channels.http` default. */
  limits?: Partial<HttpServerLimits>;
  /** Refused hosts (debug) and connections shed at the cap (warn, at most once a minute). */
  logger?: Logger;
}

/** How long a client may take and how many connections it may hold (`channels.http.*`). */
export interface HttpServerLimits {
  /** Longest a client may take to send a request's head; it then gets 408 and is disconnected. */
  headersTimeoutMs: number;
  /** Longest a client may take to send a whole request, body included; not the wait for a reply. */
  requestTimeoutMs: number;
  /** How long a keep-alive connection may sit idle between requests. */
  keepAliveTimeoutMs: number;
  /** Open connections at most; see `capConnections` for which one goes when a new one comes. */
  maxConnections: number;
}

export const DEFAULT_SERVER_LIMITS: Readonly<HttpServerLimits> = {
  headersTimeoutMs: STATIC_DEFAULTS.httpHeadersTimeoutSeconds * 1000,
  requestTimeoutMs: STATIC_DEFAULTS.httpRequestTimeoutSeconds * 1000,
  keepAliveTimeoutMs: STATIC_DEFAULTS.httpKeepAliveTimeoutSeconds * 1000,
  maxConnections: STATIC_DEFAULTS.httpMaxConnections,
};

/**
 * Node enforces the header and request timeouts on a timer (every 30 s by default, which would let
 * a 10 s timeout run to 40 s): check every second, or more often for shorter timeouts.
 */
const MAX_TIMEOUT_CHECK_INTERVAL_MS = 1_000;

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
  const limits = { ...DEFAULT_SERVER_LIMITS, ...options.limits };
  const hosts = createHostCheck(options.allowedHosts);
  const listener = getRequestListener((request, env) => options.app.fetch(request, env), {
    hostname: host,
  });
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(MAX_TIMEOUT_CHECK_INTERVAL_MS, limits.headersTimeoutMs),
    },
    (request, response) => {
      if (!hosts.allows(request.headers.host)) {
        refuseHost(response, request.headers.host, hosts, options.logger);
        return;
      }
      // The adapter answers errors itself; should it still reject, drop the connection.
      listener(request, response).catch(() => response.destroy());
    },
  );
  // Set as a property, which every Node version takes (not all take it as an option).
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  capConnections(server, {
    maxConnections: limits.maxConnections,
    onShed: shedLogger(limits.maxConnections, options.logger),
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

/**
 * 421 Misdirected Request: the request names a host this server does not answer for (RFC 9110,
 * 15.5.20), as a DNS-rebound browser request does. Not 403, which the API keeps for a chat
 * the contacts do not answer: nothing about the client is refused, only the name it used.
 */
function refuseHost(
  response: ServerResponse,
  header: string | undefined,
  hosts: HostCheck,
  logger: Logger | undefined,
): void {
  logger?.debug("http-host-refuse", { host: header });
  const got = header === undefined ? "no Host header" : `Host ${JSON.stringify(header)}`;
  const error = toHttpError(
    new DispatchError(
      "host_not_allowed",
      `dispatch answers only requests addressed to ${hosts.names.join(", ")} (got ${got}). ` +
        "If you reach it through a reverse proxy or by another name, add that host name to " +
        '"channels.http.allowedHosts" in ~/dispatch/config.json and restart dispatch.',
    ),
  );
  response.writeHead(error.status, {
    "Content-Type": "application/json; charset=UTF-8",
    ...error.headers,
  });
  response.end(JSON.stringify(error.body));
}

const SHED_WARNING_INTERVAL_MS = 60_000;

/** Logs each shed connection at debug, and a warning at most once a minute while it goes on. */
function shedLogger(
  maxConnections: number,
  logger: Logger | undefined,
): ((reason: ShedReason, open: number) => void) | undefined {
  if (logger === undefined) return undefined;
  let lastWarningAt = -Infinity;
  let shedSinceWarning = 0;
  return (reason, open) => {
    shedSinceWarning += 1;
    logger.debug("http-connection-shed", { reason, open });
    const now = performance.now();
    if (now - lastWarningAt < SHED_WARNING_INTERVAL_MS) return;
    logger.warn("http-connection-cap-reach", {
      maxConnections,
      shed: shedSinceWarning,
      fix: "a client holds many connections open; if they are yours, raise channels.http.maxConnections",
    });
    lastWarningAt = now;
    shedSinceWarning = 0;
  };
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
