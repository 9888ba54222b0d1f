import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import {
  createSdkMcpServer,
  query,
  tool,
  type Options,
  type SDKResultMessage,
  type SDKUserMessage,
} from "@anthropic-ai/claude-agent-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";

import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { deferred, type Deferred } from "../support/deferred.js";

// ---------------------------------------------------------------------------------------------
// Helpers

/** An async iterable we push into: the SDK's streaming input. */
function createPushQueue<T>(): { iterable: AsyncIterable<T>; push(item: T): void; end(): void } {
  const items: T[] = [];
  let wake: Deferred<void> | undefined;
  let ended = false;
  return {
    iterable: {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          const item = items.shift();
          if (item !== undefined) {
            yield item;
            continue;
          }
          if (ended) return;
          wake = deferred<void>();
          await wake.promise;
        }
      },
    },
    push(item) {
      items.push(item);
      wake?.resolve();
    },
    end() {
      ended = true;
      wake?.resolve();
    },
  };
}

interface Turn {
  /** Top-level assistant text of the turn. */
  text: string;
  result: SDKResultMessage;
}

interface AgentSession {
  send(content: string): Promise<Turn>;
  close(): Promise<void>;
}

const tempDirs: string[] = [];

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** A real SDK session in streaming-input mode, read by exactly one for-await loop. */
async function openSession(
  model: StandInModel,
  extra: Pick<Options, "mcpServers" | "allowedTools"> = {},
): Promise<AgentSession> {
  const inbox = createPushQueue<SDKUserMessage>();
  const q = query({
    prompt: inbox.iterable,
    options: {
      cwd: await tempDir("stand-in-cwd-"),
      env: {
        PATH: process.env.PATH,
        HOME: await tempDir("stand-in-home-"),
        ANTHROPIC_BASE_URL: model.url,
        ANTHROPIC_API_KEY: "test-key",
        DISABLE_TELEMETRY: "1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
      },
      permissionMode: "dontAsk",
      allowedTools: [],
      sessionId: randomUUID(),
      ...extra,
    },
  });
  const waiting: Deferred<Turn>[] = [];
  let text = "";
  const loop = (async () => {
    for await (const message of q) {
      if (message.type === "assistant" && message.parent_tool_use_id === null) {
        for (const block of message.message.content) {
          if (block.type === "text") text += block.text;
        }
      } else if (message.type === "result") {
        waiting.shift()?.resolve({ text, result: message });
        text = "";
      }
    }
  })().catch((error: unknown) => {
    for (const turn of waiting.splice(0)) turn.reject(error);
  });
  return {
    send(content) {
      const turn = deferred<Turn>();
      waiting.push(turn);
      inbox.push({
        type: "user",
        message: { role: "user", content },
        parent_tool_use_id: null,
        uuid: randomUUID(),
        client_composed: true,
      });
      return turn.promise;
    },
    async close() {
      inbox.end();
      q.close();
      await loop;
      for (const turn of waiting.splice(0)) turn.reject(new Error("session closed"));
    },
  };
}

async function postMessages(model: StandInModel, body: unknown): Promise<Response> {
  return fetch(`${model.url}/v1/messages?beta=true`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

interface StreamEvent {
  event: string;
  data: Record<string, unknown>;
}

function parseSse(text: string): StreamEvent[] {
  return text
    .split("\n\n")
    .filter((frame) => frame.trim() !== "")
    .map((frame) => {
      const event = /^event: (.+)$/m.exec(frame)?.[1] ?? "";
      const data = JSON.parse(/^data: (.+)$/m.exec(frame)?.[1] ?? "{}") as Record<string, unknown>;
      return { event, data };
    });
}

const hello = (text: string, extra: Record<string, unknown> = {}) => ({
  model: "claude-test",
  max_tokens: 100,
  messages: [{ role: "user", content: text }],
  ...extra,
});

// ---------------------------------------------------------------------------------------------

let model: StandInModel;

beforeAll(async () => {
  model = await startStandInModel();
});

afterAll(async () => {
  await model.close();
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

describe("stand-in model over HTTP", () => {
  it("listens on loopback only", () => {
    expect(model.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("answers a non-streaming request with a message JSON", async () => {
    const response = await postMessages(model, hello("hi there"));
    expect(response.status).toBe(200);
    const message = (await response.json()) as Record<string, unknown>;
    expect(message).toMatchObject({
      type: "message",
      role: "assistant",
      model: "claude-test",
      stop_reason: "end_turn",
      content: [
        {
          type: "text",
          text: "[stand-in model] Reply to message 1: hi there (I can see 0 earlier messages)",
        },
      ],
    });
    const usage = message.usage as { input_tokens: number; output_tokens: number };
    expect(Number.isInteger(usage.input_tokens) && usage.input_tokens > 0).toBe(true);
    expect(Number.isInteger(usage.output_tokens) && usage.output_tokens > 0).toBe(true);
  });

  it("streams a text reply as server-sent events", async () => {
    const response = await postMessages(model, hello("stream me", { stream: true }));
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const events = parseSse(await response.text());
    const names = events.map((event) => event.event).filter((name) => name !== "ping");
    expect(names[0]).toBe("message_start");
    expect(names.slice(-2)).toEqual(["message_delta", "message_stop"]);
    expect(names).toContain("content_block_start");
    expect(names).toContain("content_block_stop");
    for (const { event, data } of events) expect(data.type).toBe(event);
    const text = events
      .map(({ data }) => data.delta as { type?: string; text?: string } | undefined)
      .filter((delta) => delta?.type === "text_delta")
      .map((delta) => delta?.text)
      .join("");
    expect(text).toBe(
      "[stand-in model] Reply to message 1: stream me (I can see 0 earlier messages)",
    );
    expect(events.at(-2)?.data).toMatchObject({
      delta: { stop_reason: "end_turn" },
      usage: { output_tokens: expect.any(Number) as number },
    });
  });

  it("streams a tool call as input_json_delta events", async () => {
    const body = hello('[[tool Lookup {"q":"a b"}]]', {
      stream: true,
      tools: [{ name: "Lookup", description: "look up", input_schema: { type: "object" } }],
    });
    const events = parseSse(await (await postMessages(model, body)).text());
    const start = events.find((event) => event.event === "content_block_start")?.data;
    expect(start).toMatchObject({ content_block: { type: "tool_use", name: "Lookup", input: {} } });
    expect((start?.content_block as { id: string }).id).toMatch(/^toolu_/);
    const json = events
      .map(({ data }) => data.delta as { type?: string; partial_json?: string } | undefined)
      .filter((delta) => delta?.type === "input_json_delta")
      .map((delta) => delta?.partial_json)
      .join("");
    expect(JSON.parse(json)).toEqual({ q: "a b" });
    expect(events.at(-2)?.data).toMatchObject({ delta: { stop_reason: "tool_use" } });
  });

  it("answers errors, count_tokens, hello, title requests and unknown paths", async () => {
    const overloaded = await postMessages(model, hello("[[error 529]]", { stream: true }));
    expect(overloaded.status).toBe(529);
    expect(await overloaded.json()).toMatchObject({
      type: "error",
      error: { type: "overloaded_error" },
    });

    const tooLong = await postMessages(model, hello("[[prompt-too-long]]"));
    expect(tooLong.status).toBe(400);
    expect(await tooLong.json()).toEqual({
      type: "error",
      error: {
        type: "invalid_request_error",
        message: "prompt is too long: 250000 tokens > 200000 maximum",
      },
    });

    const malformed = await postMessages(model, "{not json");
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ error: { type: "invalid_request_error" } });
    expect((await postMessages(model, { messages: 5 })).status).toBe(400);

    const count = await fetch(`${model.url}/v1/messages/count_tokens?beta=true`, {
      method: "POST",
      body: JSON.stringify(hello("count me")),
    });
    const counted = (await count.json()) as { input_tokens: number };
    expect(Number.isInteger(counted.input_tokens) && counted.input_tokens > 0).toBe(true);

    expect((await fetch(`${model.url}/api/hello`, { method: "HEAD" })).status).toBe(200);

    const title = await postMessages(
      model,
      hello("hi", {
        output_config: {
          format: { type: "json_schema", schema: { properties: { title: { type: "string" } } } },
        },
      }),
    );
    expect(await title.json()).toMatchObject({
      content: [{ type: "text", text: '{"title":"Stand-in chat"}' }],
    });
    expect(model.requests.at(-1)).toMatchObject({ kind: "title", path: "/v1/messages" });

    const missing = await fetch(`${model.url}/v1/nothing`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({
      type: "error",
      error: { type: "not_found_error" },
    });
  });

  it("waits [[delay N]] before answering, and close() ends a delayed request", async () => {
    const started = Date.now();
    await (await postMessages(model, hello("[[delay 300]] slow"))).json();
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);

    const other = await startStandInModel();
    const pending = postMessages(other, hello("[[delay 60000]] never", { stream: true }));
    await other.waitForRequests(1, (request) => request.kind === "main");
    expect(other.requests[0]?.userTexts).toEqual(["[[delay 60000]] never"]);
    const closing = Date.now();
    await other.close();
    await expect(pending).rejects.toThrow();
    expect(Date.now() - closing).toBeLessThan(5_000);
    await expect(other.waitForRequests(5)).rejects.toThrow(/closed/);
  });
});

describe("stand-in model behind the real Claude Agent SDK", () => {
  it("remembers a word across turns of one session", async () => {
    const session = await openSession(model);
    try {
      const first = await session.send("remember the word pineapple");
      expect(first.text).toBe("[stand-in model] OK, I will remember pineapple.");
      expect(first.result.subtype).toBe("success");

      const second = await session.send("what word did I ask you to remember?");
      expect(second.text).toContain("pineapple");

      const third = await session.send("and now?");
      expect(third.text).toBe(
        "[stand-in model] Reply to message 3: and now? (I can see 2 earlier messages)",
      );
      const last = model.mainRequests().at(-1);
      expect(last?.userTexts).toEqual([
        "remember the word pineapple",
        "what word did I ask you to remember?",
        "and now?",
      ]);
      expect(last?.body).toMatchObject({ stream: true });
    } finally {
      await session.close();
    }
  });

  // The CLI merges a prompt whose turn failed with the next prompt into one user message; the
  // stand-in must not fail that next turn too.
  it("fails a turn on [[error 400]] and answers the next one", async () => {
    const session = await openSession(model);
    try {
      const failed = await session.send("[[error 400]] please fail");
      // The CLI reports an API error as assistant text on a "success" result with is_error.
      expect(failed.text).toContain("API Error: 400");
      expect(failed.result.is_error).toBe(true);
      const next = await session.send("are you back?");
      expect(next.text).toBe(
        "[stand-in model] Reply to message 2: are you back? (I can see 1 earlier messages)",
      );
    } finally {
      await session.close();
    }
  });

  it("runs a [[tool ...]] round trip through an in-process MCP tool", async () => {
    const calls: { text: string }[] = [];
    const dispatch = createSdkMcpServer({
      name: "dispatch",
      version: "1.0.0",
      tools: [
        tool("send_message", "Send a text message to the contact", { text: z.string() }, (args) => {
          calls.push(args);
          return Promise.resolve({ content: [{ type: "text", text: `sent: ${args.text}` }] });
        }),
      ],
    });
    const session = await openSession(model, {
      mcpServers: { dispatch },
      allowedTools: ["mcp__dispatch__send_message"],
    });
    try {
      const turn = await session.send('[[tool mcp__dispatch__send_message {"text":"on my way"}]]');
      expect(calls).toEqual([{ text: "on my way" }]);
      expect(turn.text).toBe(
        "[stand-in model] Tool mcp__dispatch__send_message returned: sent: on my way",
      );
      expect(turn.result.subtype).toBe("success");
      // The CLI defers MCP tools behind ToolSearch; the stand-in loads the tool, then calls it.
      const replies = model.mainRequests().map((request) => request.reply);
      expect(replies).toContain('[tool_use mcp__dispatch__send_message {"text":"on my way"}]');
    } finally {
      await session.close();
    }
  });
});
