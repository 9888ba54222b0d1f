/**
 * A stand-in of signal-cli's HTTP daemon (`signal-cli -a ACCOUNT daemon --http HOST:PORT`), a
 * real HTTP server speaking its formats (signal-cli commit c26e0632,
 * src/main/java/org/asamk/signal/http/HttpServerHandler.java and ServerSentEventSender.java):
 *
 * - `GET /api/v1/events`: `text/event-stream`, headers flushed at once, each message as
 *   `event:receive` + `data:{"envelope":...,"account":...}` + a blank line, `:` keep-alives;
 * - `POST /api/v1/rpc`: JSON-RPC 2.0 (`application/json` only, else 415): `send`, `sendTyping`,
 *   `listAccounts` (multi-account mode; `-32601` with `-a ACCOUNT`), `version`;
 * - `GET /api/v1/check`: 200.
 *
 * It behaves as signal-cli with `--receive-mode=on-connection`: messages pushed while no stream
 * is open wait (on the Signal server, in real life) and come when one opens. Tests can cut the
 * stream mid-burst, fail sends, and read every JSON-RPC call made.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { receiveEvent } from "./signal-envelopes.js";

export interface RpcCall {
  method: string;
  params: Record<string, unknown>;
}

export interface SignalCliStandIn {
  /** `http://127.0.0.1:<port>`, for `channels.signal.url`. */
  url: string;
  account: string;
  /** Sends an envelope into the open stream, or keeps it until one opens. */
  push(envelope: Record<string, unknown>): void;
  /**
   * Cuts the stream after `afterEvents` more events: the next event is written half, then the
   * connection is destroyed. That event and every later one wait for the next stream, as after a
   * signal-cli restart (the cut one is still in its message cache and is sent again).
   */
  cutStreamAfter(afterEvents: number): void;
  /** The next `count` sends fail with signal-cli's error for a send that reached nobody. */
  failSends(count: number): void;
  /** Every JSON-RPC call, in order. */
  calls(): RpcCall[];
  /** The `send` calls' params. */
  sends(): Record<string, unknown>[];
  /** Streams opened so far. */
  connections(): number;
  /** Resolves when a stream is open (at once when one is). */
  whenConnected(): Promise<void>;
  close(): Promise<void>;
}

export interface SignalCliStandInOptions {
  account: string;
  /** Started with `-a ACCOUNT` (single-account mode): `listAccounts` does not exist. */
  singleAccount?: boolean;
  keepAliveMs?: number;
  /** Default 0: any free port. */
  port?: number;
}

export async function startSignalCliStandIn(
  options: SignalCliStandInOptions,
): Promise<SignalCliStandIn> {
  const { account } = options;
  const waiting: string[] = [];
  const calls: RpcCall[] = [];
  let stream: ServerResponse | undefined;
  let connections = 0;
  let cutAfter: number | undefined;
  let sendFailures = 0;
  let sentTimestamp = Date.now();
  let connectedWaiters: (() => void)[] = [];

  const frame = (data: string) => `event:receive\ndata:${data}\n\n`;

  const flush = () => {
    while (stream && waiting.length > 0) {
      const data = waiting[0]!;
      if (cutAfter === 0) {
        const bytes = frame(data);
        const current = stream;
        stream = undefined;
        cutAfter = undefined;
        current.write(bytes.slice(0, Math.floor(bytes.length / 2)), () => current.destroy());
        return;
      }
      waiting.shift();
      stream.write(frame(data));
      if (cutAfter !== undefined) cutAfter -= 1;
    }
  };

  const openStream = (request: IncomingMessage, response: ServerResponse) => {
    const query = new URL(request.url ?? "/", "http://localhost").searchParams.get("account");
    if (!options.singleAccount && query !== null && query !== "" && query !== account) {
      response.writeHead(400).end();
      return;
    }
    response.writeHead(200, { "content-type": "text/event-stream" });
    response.flushHeaders();
    stream?.destroy();
    stream = response;
    connections += 1;
    const keepAlive = setInterval(() => response.write(":\n"), options.keepAliveMs ?? 15_000);
    response.on("close", () => {
      clearInterval(keepAlive);
      if (stream === response) stream = undefined;
    });
    for (const resolve of connectedWaiters) resolve();
    connectedWaiters = [];
    flush();
  };

  const answerRpc = async (request: IncomingMessage, response: ServerResponse) => {
    if (request.method !== "POST") return response.writeHead(405).end();
    if (!(request.headers["content-type"] ?? "").startsWith("application/json")) {
      return response.writeHead(415).end();
    }
    let body = "";
    for await (const chunk of request) body += String(chunk);
    const { id, method, params } = JSON.parse(body) as {
      id?: unknown;
      method: string;
      params?: Record<string, unknown>;
    };
    calls.push({ method, params: params ?? {} });
    const reply = (payload: Record<string, unknown>) => {
      const text = JSON.stringify({ jsonrpc: "2.0", ...payload, id: id ?? null });
      response.writeHead(200, { "content-type": "application/json" }).end(text);
    };
    switch (method) {
      case "send": {
        if (sendFailures > 0) {
          sendFailures -= 1;
          return reply({
            error: {
              code: -32603,
              message: "Failed to send message: Connection closed! (IOException)",
              data: null,
            },
          });
        }
        sentTimestamp = Math.max(sentTimestamp + 1, Date.now());
        const recipient = params?.recipient;
        return reply({
          result: {
            timestamp: sentTimestamp,
            results: [
              {
                recipientAddress: {
                  uuid: null,
                  number: Array.isArray(recipient)
                    ? (recipient[0] as unknown)
                    : (recipient ?? null),
                },
                ...(params?.groupId ? { groupId: params.groupId } : {}),
                type: "SUCCESS",
              },
            ],
          },
        });
      }
      case "sendTyping":
        return reply({ result: { timestamp: Date.now(), results: [] } });
      case "version":
        return reply({ result: { version: "0.13.99-stand-in" } });
      case "listAccounts":
        if (options.singleAccount) {
          return reply({ error: { code: -32601, message: "Method not implemented", data: null } });
        }
        return reply({ result: [{ number: account }] });
      default:
        return reply({ error: { code: -32601, message: "Method not implemented", data: null } });
    }
  };

  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (path === "/api/v1/events" && request.method === "GET") return openStream(request, response);
    if (path === "/api/v1/check") return response.writeHead(200).end();
    if (path === "/api/v1/rpc") {
      answerRpc(request, response).catch(() => response.writeHead(400).end());
      return;
    }
    response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    account,
    push(envelope) {
      waiting.push(JSON.stringify(receiveEvent(envelope, account)));
      flush();
    },
    cutStreamAfter(afterEvents) {
      cutAfter = afterEvents;
      flush();
    },
    failSends(count) {
      sendFailures = count;
    },
    calls: () => [...calls],
    sends: () => calls.filter((call) => call.method === "send").map((call) => call.params),
    connections: () => connections,
    whenConnected: () =>
      stream ? Promise.resolve() : new Promise((resolve) => connectedWaiters.push(resolve)),
    async close() {
      stream?.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
