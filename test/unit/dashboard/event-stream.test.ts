import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { serveEventStream, type SendEvent } from "../../../src/dashboard/event-stream.js";

describe("serveEventStream", () => {
  it("cuts off a reader too slow for what is sent, instead of buffering without bound", async () => {
    let send: SendEvent = () => {};
    let stopped = false;
    const app = new Hono();
    app.get("/", (c) =>
      serveEventStream(c, {
        heartbeatMs: 60_000,
        maxPending: 5,
        untilEnd: () => () => {},
        start: (sendEvent) => {
          send = sendEvent;
          return () => (stopped = true);
        },
      }),
    );
    const response = await app.request("/");
    // Nobody reads: every event after the first few waits, until there are too many.
    const big = "x".repeat(64 * 1024);
    for (let index = 0; index < 50; index += 1) send("line", big, String(index));
    const reader: ReadableStreamDefaultReader<Uint8Array> = response.body!.getReader();
    let events = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      events += new TextDecoder().decode(value).split("event: line").length - 1;
    }
    expect(stopped).toBe(true);
    expect(events).toBeLessThan(50);
  });
});
