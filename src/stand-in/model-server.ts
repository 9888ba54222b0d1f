/**
 * A stand-in for the Anthropic Messages API on loopback, for tests and the daemon's demo mode.
 * The Claude CLI talks to it through `ANTHROPIC_BASE_URL`; replies come from the pure
 * {@link composeReply}, so they depend on the conversation the CLI sends.
 */
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

import { DispatchError } from "../utils/errors.js";
import {
  composeReply,
  readConversation,
  TITLE_REPLY,
  untrustedPartOf,
  userTextsOf,
  type ComposedReply,
  type Conversation,
} from "./compose-reply.js";

/** Recorded as soon as the reply is chosen, before any `[[delay N]]` wait. */
export interface RecordedRequest {
  /** Date.now() when the request arrived. */
  at: number;
  method: string;
  /** Path without the query string, e.g. `/v1/messages`. */
  path: string;
  /** "main": a conversation turn; "title": the CLI's title generation; "other": the rest. */
  kind: "main" | "title" | "other";
  /** Parsed JSON body; the raw text when it is not JSON; undefined when empty. */
  body: unknown;
  /** The body's size in bytes, as it came over the wire (0 when it was too large to read). */
  bytes: number;
  /** Text of every user message, in order, without system-reminders and tool results. */
  userTexts: string[];
  /** The reply text; `[tool_use NAME {input}]` for a tool call; the message for an error. */
  reply: string;
}

export interface StandInModelOptions {
  /** Default 0: any free port. */
  port?: number;
  host?: "127.0.0.1";
}

export interface StandInModel {
  /** `http://127.0.0.1:<port>`, for `ANTHROPIC_BASE_URL`. */
  url: string;
  requests: RecordedRequest[];
  mainRequests(): RecordedRequest[];
  /** Ends open connections and pending delays too. */
  close(): Promise<void>;
  /** Resolves once `count` recorded requests match `predicate` (default: all); rejects on close. */
  waitForRequests(count: number, predicate?: (request: RecordedRequest) => boolean): Promise<void>;
}

const MAX_BODY_BYTES = 32 * 1024 * 1024;

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The CLI's title request: structured output with a `title` property and no tools. */
export function isTitleRequest(body: unknown): boolean {
  if (!isRecord(body)) return false;
  if (Array.isArray(body.tools) && body.tools.length > 0) return false;
  const format = isRecord(body.output_config) ? body.output_config.format : undefined;
  if (!isRecord(format) || format.type !== "json_schema") return false;
  const schema = format.schema;
  return isRecord(schema) && isRecord(schema.properties) && "title" in schema.properties;
}

/**
 * Which message a request ends in, for `[[error STATUS xN]]`: the text as it is, or for one in
 * dispatch's envelope its marker and what the contact wrote. A message sent again after a failed
 * turn keeps both, while its header may say less the second time.
 */
export function attemptKeyOf(text: string): string {
  const nonce = ENVELOPE_NONCE.exec(text)?.[1];
  return nonce === undefined ? text : `${nonce}\n${untrustedPartOf(text).trim()}`;
}

const ENVELOPE_NONCE = /<(?:msg|dispatch-message) nonce="([a-z0-9]+)"/;

function roughTokens(value: unknown): number {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? "");
  return Math.max(1, Math.ceil(text.length / 4));
}

function randomId(prefix: string): string {
  return prefix + randomBytes(12).toString("hex");
}

function errorBody(type: string, message: string): Json {
  return { type: "error", error: { type, message } };
}

function sendJson(response: ServerResponse, status: number, body: Json): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "request-id": randomId("req_stand_in_"),
  });
  response.end(text);
}

interface MessageContent {
  blocks: Json[];
  stopReason: "end_turn" | "tool_use";
  outputTokens: number;
}

function contentOf(reply: Exclude<ComposedReply, { type: "error" }>): MessageContent {
  if (reply.type === "text") {
    return {
      blocks: [{ type: "text", text: reply.text }],
      stopReason: "end_turn",
      outputTokens: roughTokens(reply.text),
    };
  }
  return {
    blocks: [{ type: "tool_use", id: randomId("toolu_"), name: reply.name, input: reply.input }],
    stopReason: "tool_use",
    outputTokens: roughTokens(reply.input) + 10,
  };
}

/** Splits a string into up to three pieces, to exercise the client's delta handling. */
function chunks(text: string): string[] {
  if (text.length < 12) return [text];
  const third = Math.ceil(text.length / 3);
  return [text.slice(0, third), text.slice(third, 2 * third), text.slice(2 * third)];
}

function streamEvents(message: Json, content: MessageContent): string[] {
  const event = (type: string, data: Json): string =>
    `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const usage = message.usage as Json;
  const events = [
    event("message_start", {
      message: {
        ...message,
        content: [],
        stop_reason: null,
        usage: { ...usage, output_tokens: 1 },
      },
    }),
    event("ping", {}),
  ];
  content.blocks.forEach((block, index) => {
    if (block.type === "text") {
      events.push(
        event("content_block_start", { index, content_block: { type: "text", text: "" } }),
      );
      for (const piece of chunks(String(block.text))) {
        events.push(
          event("content_block_delta", { index, delta: { type: "text_delta", text: piece } }),
        );
      }
    } else {
      events.push(event("content_block_start", { index, content_block: { ...block, input: {} } }));
      for (const piece of chunks(JSON.stringify(block.input))) {
        events.push(
          event("content_block_delta", {
            index,
            delta: { type: "input_json_delta", partial_json: piece },
          }),
        );
      }
    }
    events.push(event("content_block_stop", { index }));
  });
  events.push(
    event("message_delta", {
      delta: { stop_reason: content.stopReason, stop_sequence: null },
      usage: { output_tokens: content.outputTokens },
    }),
    event("message_stop", {}),
  );
  return events;
}

function describeReply(reply: ComposedReply): string {
  if (reply.type === "text") return reply.text;
  if (reply.type === "tool_use") return `[tool_use ${reply.name} ${JSON.stringify(reply.input)}]`;
  return reply.message;
}

/** The body as text, or undefined when it is larger than {@link MAX_BODY_BYTES}. */
async function readBody(request: IncomingMessage): Promise<string | undefined> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of request) {
    const buffer = part as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) return undefined;
    parts.push(buffer);
  }
  return Buffer.concat(parts).toString("utf8");
}

export async function startStandInModel(options: StandInModelOptions = {}): Promise<StandInModel> {
  const host = options.host ?? "127.0.0.1";
  if (host !== "127.0.0.1") {
    throw new DispatchError(
      "stand_in_host",
      `[stand-in model] Expected \`host\` to be "127.0.0.1", got \`${String(host)}\`. The stand-in only listens on loopback.`,
    );
  }
  const requests: RecordedRequest[] = [];
  /** Conversation requests seen per message they end in (`attemptKeyOf`), for `[[error STATUS xN]]`. */
  const attempts = new Map<string, number>();
  const waiters = new Set<{ check(): boolean; reject(error: Error): void }>();
  const closing = new AbortController();

  function record(entry: RecordedRequest): void {
    requests.push(entry);
    for (const waiter of waiters) if (waiter.check()) waiters.delete(waiter);
  }

  function countAttempt(conversation: Conversation): number {
    const key = attemptKeyOf(userTextsOf(conversation).at(-1) ?? "");
    const attempt = attempts.get(key) ?? 0;
    attempts.set(key, attempt + 1);
    return attempt;
  }

  async function handleMessages(response: ServerResponse, entry: RecordedRequest): Promise<void> {
    const conversation = readConversation(entry.body);
    if (!conversation) {
      const message =
        "messages: Field required (the body must be a JSON object with a messages array)";
      record({ ...entry, reply: message });
      sendJson(response, 400, errorBody("invalid_request_error", message));
      return;
    }
    const title = isTitleRequest(entry.body);
    const reply: ComposedReply = title
      ? { type: "text", text: TITLE_REPLY, delayMs: 0 }
      : composeReply(conversation, { attempt: countAttempt(conversation) });
    record({
      ...entry,
      kind: title ? "title" : "main",
      userTexts: userTextsOf(conversation),
      reply: describeReply(reply),
    });

    if (reply.delayMs > 0) {
      const gone = new AbortController();
      const onClose = (): void => gone.abort();
      response.once("close", onClose);
      try {
        await sleep(reply.delayMs, undefined, {
          signal: AbortSignal.any([gone.signal, closing.signal]),
        });
      } catch {
        return; // the client went away or the server is closing
      } finally {
        response.off("close", onClose);
      }
    }
    if (reply.type === "error") {
      sendJson(response, reply.status, errorBody(reply.errorType, reply.message));
      return;
    }
    const body = entry.body as Json;
    const content = contentOf(reply);
    const message: Json = {
      id: randomId("msg_stand_in_"),
      type: "message",
      role: "assistant",
      model: typeof body.model === "string" ? body.model : "stand-in",
      content: content.blocks,
      stop_reason: content.stopReason,
      stop_sequence: null,
      usage: {
        input_tokens: reply.inputTokens ?? roughTokens(body.messages),
        output_tokens: content.outputTokens,
        cache_creation_input_tokens: 0,
        cache_read_input_tokens: 0,
      },
    };
    if (body.stream !== true) {
      sendJson(response, 200, message);
      return;
    }
    response.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      "request-id": randomId("req_stand_in_"),
    });
    for (const event of streamEvents(message, content)) response.write(event);
    response.end();
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method ?? "GET";
    const path = new URL(request.url ?? "/", "http://stand-in").pathname;
    const raw = await readBody(request);
    const entry: RecordedRequest = {
      at: Date.now(),
      method,
      path,
      kind: "other",
      body: undefined,
      bytes: raw === undefined ? 0 : Buffer.byteLength(raw),
      userTexts: [],
      reply: "",
    };
    if (raw === undefined) {
      const message = `Request body is larger than ${MAX_BODY_BYTES} bytes.`;
      record({ ...entry, reply: message });
      sendJson(response, 413, errorBody("request_too_large", message));
      return;
    }
    if (raw !== "") {
      try {
        entry.body = JSON.parse(raw) as unknown;
      } catch {
        entry.body = raw;
        if (method === "POST") {
          const message = "The request body is not valid JSON.";
          record({ ...entry, reply: message });
          sendJson(response, 400, errorBody("invalid_request_error", message));
          return;
        }
      }
    }

    if (path === "/api/hello") {
      record(entry);
      response.writeHead(200, { "content-type": "application/json" });
      response.end(method === "HEAD" ? undefined : "{}");
      return;
    }
    if (method === "POST" && path === "/v1/messages/count_tokens") {
      const conversation = readConversation(entry.body);
      const inputTokens = roughTokens(isRecord(entry.body) ? entry.body.messages : "");
      record({
        ...entry,
        userTexts: conversation ? userTextsOf(conversation) : [],
        reply: String(inputTokens),
      });
      sendJson(response, 200, { input_tokens: inputTokens });
      return;
    }
    if (method === "POST" && path === "/v1/messages") {
      await handleMessages(response, entry);
      return;
    }
    const message = `[stand-in model] No route for ${method} ${path}.`;
    record({ ...entry, reply: message });
    sendJson(response, 404, errorBody("not_found_error", message));
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      // Never let odd input take the server down; answer 500 if we still can.
      if (!response.headersSent && !response.destroyed) {
        const message = `[stand-in model] Internal error: ${error instanceof Error ? error.message : String(error)}`;
        sendJson(response, 500, errorBody("api_error", message));
      } else {
        response.destroy();
      }
    });
  });
  server.on("clientError", (_error, socket) => socket.destroy());
  server.listen(options.port ?? 0, host);
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;

  let closed: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    requests,
    mainRequests: () => requests.filter((request) => request.kind === "main"),
    waitForRequests(count, predicate = () => true) {
      return new Promise<void>((resolve, reject) => {
        const waiter = {
          check(): boolean {
            if (requests.filter(predicate).length < count) return false;
            resolve();
            return true;
          },
          reject,
        };
        if (waiter.check()) return;
        if (closing.signal.aborted) {
          reject(new DispatchError("stand_in_closed", "[stand-in model] The server is closed."));
          return;
        }
        waiters.add(waiter);
      });
    },
    close() {
      closed ??= (async () => {
        closing.abort();
        for (const waiter of waiters) {
          waiter.reject(
            new DispatchError(
              "stand_in_closed",
              "[stand-in model] The server closed before the awaited requests arrived.",
            ),
          );
        }
        waiters.clear();
        const stopped = new Promise<void>((resolve, reject) =>
          server.close((error) => (error ? reject(error) : resolve())),
        );
        server.closeAllConnections();
        await stopped;
      })();
      return closed;
    },
  };
}
