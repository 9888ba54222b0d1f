import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import {
  createApiEvents,
  createSignal,
  type SessionStateView,
} from "../../../src/channels/http/api-events.js";
import { toHttpError } from "../../../src/channels/http/http-errors.js";
import type { ReplyEvent } from "../../../src/store/journal.js";
import type { StreamEvent } from "../../support/event-stream-reader.js";

/** `GET /v1/events` over an in-memory outbox and session list. */
function setUp(options: { maxStreams?: number; heartbeatMs?: number } = {}) {
  const outbox: ReplyEvent[] = [];
  const replyRecorded = createSignal();
  let sessions: SessionStateView[] = [{ chat_id: "+1", session_name: "one", state: "idle" }];
  const listeners = new Set<(list: SessionStateView[]) => void>();
  const ends = new Set<() => void>();
  const events = createApiEvents({
    replies: {
      after: (afterId, limit) =>
        Promise.resolve(outbox.filter((event) => event.id > afterId).slice(0, limit)),
      lastId: () => Promise.resolve(outbox.at(-1)?.id ?? 0),
    },
    replyRecorded,
    sessions: {
      listSessions: () => sessions,
      subscribe: (listener, onEnd) => {
        listeners.add(listener);
        if (onEnd) ends.add(onEnd);
        return () => listeners.delete(listener);
      },
    },
    batchSize: 2,
    heartbeatMs: options.heartbeatMs ?? 60_000,
    ...(options.maxStreams === undefined ? {} : { maxStreams: options.maxStreams }),
  });
  const app = new Hono();
  app.get("/v1/events", (c) => events.serve(c));
  app.onError((error, c) => {
    const response = toHttpError(error);
    return c.json(response.body, response.status);
  });
  const record = (text: string): void => {
    const id = outbox.length + 1;
    outbox.push({
      id,
      inboundId: id,
      part: 0,
      parts: 1,
      chatId: "+1",
      text,
      messageIds: [`m-${id}`],
      createdAt: new Date(0),
    });
    replyRecorded.notify();
  };
  const changeState = (state: string): void => {
    sessions = [{ chat_id: "+1", session_name: "one", state }];
    for (const listener of listeners) listener(sessions);
  };
  const shutDown = (): void => {
    for (const end of ends) end();
  };
  return { app, events, record, changeState, shutDown };
}

/** Reads a response's server-sent events and comments. */
function reader(response: Response) {
  const stream = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const comments: string[] = [];
  const ready: StreamEvent[] = [];
  const readMore = async (): Promise<void> => {
    const { value, done } = await stream.read();
    if (done) throw new Error("ended");
    buffer += value;
    const blocks = buffer.split("\n\n");
    buffer = blocks.pop()!;
    for (const block of blocks) {
      const fields = new Map<string, string>();
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) comments.push(line);
        else fields.set(line.slice(0, line.indexOf(":")), line.slice(line.indexOf(":") + 2));
      }
      if (fields.has("data")) {
        ready.push({
          event: fields.get("event")!,
          id: fields.get("id"),
          data: fields.get("data")!,
        });
      }
    }
  };
  return {
    comments,
    async comment(): Promise<string> {
      while (comments.length === 0) await readMore();
      return comments[0]!;
    },
    async next(): Promise<StreamEvent> {
      for (;;) {
        if (ready.length > 0) return ready.shift()!;
        await readMore();
      }
    },
    async ended(): Promise<boolean> {
      for (;;) {
        const { done } = await stream.read();
        if (done) return true;
      }
    },
    cancel: () => stream.cancel(),
  };
}

const texts = (events: StreamEvent[]) =>
  events.map((event) => [event.id, (JSON.parse(event.data) as { text: string }).text]);

describe("GET /v1/events", () => {
  it("sends replies from now on without Last-Event-ID, each with its outbox id", async () => {
    const { app, record } = setUp();
    record("before");
    const response = await app.request("/v1/events");
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    const stream = reader(response);
    record("after");
    const event = await stream.next();
    expect(event.event).toBe("reply");
    expect(texts([event])).toEqual([["2", "after"]]);
    expect(JSON.parse(event.data)).toMatchObject({
      type: "reply",
      chat_id: "+1",
      message_ids: ["m-2"],
    });
    await stream.cancel();
  });

  it("resumes after Last-Event-ID with every later reply, in order, across batches", async () => {
    const { app, record } = setUp();
    for (const text of ["a", "b", "c", "d", "e"]) record(text);
    const stream = reader(await app.request("/v1/events", { headers: { "Last-Event-ID": "1" } }));
    const got = [
      await stream.next(),
      await stream.next(),
      await stream.next(),
      await stream.next(),
    ];
    expect(texts(got)).toEqual([
      ["2", "b"],
      ["3", "c"],
      ["4", "d"],
      ["5", "e"],
    ]);
    record("f");
    expect(texts([await stream.next()])).toEqual([["6", "f"]]);
    await stream.cancel();
  });

  it("sends a session's state change with the id of the last reply sent", async () => {
    const { app, record, changeState } = setUp();
    record("a");
    const stream = reader(await app.request("/v1/events", { headers: { "Last-Event-ID": "0" } }));
    expect(texts([await stream.next()])).toEqual([["1", "a"]]);
    changeState("idle"); // no change: nothing sent
    changeState("busy");
    const event = await stream.next();
    expect(event).toEqual({
      event: "session",
      id: "1",
      data: JSON.stringify({ chat_id: "+1", session_name: "one", state: "busy" }),
    });
    await stream.cancel();
  });

  it("sends heartbeat comments on a quiet stream", async () => {
    const { app, record } = setUp({ heartbeatMs: 10 });
    const stream = reader(await app.request("/v1/events"));
    record("a");
    await stream.next();
    expect(await stream.comment()).toBe(": heartbeat");
    await stream.cancel();
  });

  it("serves at most maxStreams at once, then 429; a closed stream makes room", async () => {
    const { app, events, shutDown } = setUp({ maxStreams: 1 });
    const first = reader(await app.request("/v1/events"));
    expect(events.open()).toBe(1);
    const refused = await app.request("/v1/events");
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
      "too_many_event_streams",
    );
    shutDown();
    expect(await first.ended()).toBe(true);
    expect(events.open()).toBe(0);
  });

  it("refuses a Last-Event-ID that is not a whole number", async () => {
    const { app } = setUp();
    const response = await app.request("/v1/events", { headers: { "Last-Event-ID": "abc" } });
    expect(response.status).toBe(400);
  });
});
