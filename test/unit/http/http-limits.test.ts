import { afterEach, describe, expect, it } from "vitest";
import { RateLimitedError } from "../../../src/channels/http/http-errors.js";
import { closeApis, expectError, rawRequest, startApi, TOKEN } from "./http-harness.js";

afterEach(closeApis);

describe("body size limit", () => {
  it("refuses a body over the limit by its Content-Length, before reading it", async () => {
    const api = await startApi({ limits: { maxBodyBytes: 1024 } });
    // Declare 10 MB and send only a few bytes: the answer must come without the rest.
    const result = await rawRequest(
      api.port,
      {
        path: "/v1/messages",
        headers: {
          Authorization: `Bearer ${TOKEN}`,
          "Content-Type": "application/json",
          "Content-Length": 10_000_000,
        },
      },
      (request) => request.write('{"chat_id":'),
    );
    expect(result.status).toBe(413);
    expect(JSON.parse(result.body)).toMatchObject({ error: { code: "payload_too_large" } });
    // The rest of the body is not drained: the connection is closed instead.
    expect(result.connection).toBe("close");
    expect(api.control.submits).toEqual([]);
  });

  it("refuses a chunked body once it passes the limit, before it ends", async () => {
    const api = await startApi({ limits: { maxBodyBytes: 1024 } });
    const result = await rawRequest(
      api.port,
      {
        path: "/v1/messages",
        headers: { Authorization: `Bearer ${TOKEN}`, "Transfer-Encoding": "chunked" },
      },
      (request) => {
        // 2 KiB in 256-byte chunks, and the request is never ended.
        for (let index = 0; index < 8; index++) request.write("x".repeat(256));
      },
    );
    expect(result.status).toBe(413);
    expect(JSON.parse(result.body)).toMatchObject({
      error: {
        code: "payload_too_large",
        message: expect.stringContaining("1024 bytes") as unknown,
      },
    });
    expect(api.control.submits).toEqual([]);
  });

  it("accepts a chunked body under the limit", async () => {
    const api = await startApi({ limits: { maxBodyBytes: 1024 } });
    const result = await rawRequest(
      api.port,
      {
        path: "/v1/messages",
        headers: { Authorization: `Bearer ${TOKEN}`, "Transfer-Encoding": "chunked" },
      },
      (request) => {
        request.write('{"chat_id":"+1555",');
        request.end('"text":"in two chunks"}');
      },
    );
    expect(result.status).toBe(202);
    expect(api.control.submits[0]?.message.text).toBe("in two chunks");
  });

  it("defaults to 1 MiB", async () => {
    const api = await startApi();
    const body = JSON.stringify({ chat_id: "+1555", text: "x".repeat(1024 * 1024) });
    await expectError(
      await api.post("/v1/messages", body),
      413,
      "payload_too_large",
      /1048576 bytes/,
    );
  });
});

describe("rate limits", () => {
  it("leaves each chat's budget to the daemon: its refusal keeps its code and Retry-After", async () => {
    const api = await startApi({ limits: { messagesPerMinute: 100 } });
    const send = () => api.post("/v1/messages", { chat_id: "+15551234567", text: "hi" });
    // The API itself never refuses one chat's messages below the all-chats limit.
    for (let index = 0; index < 40; index++) expect((await send()).status).toBe(202);
    api.control.failures.set(
      "submit",
      new RateLimitedError("Chat +15551234567 sent more than 30 messages a minute", 4_500),
    );
    const refused = await send();
    expect(refused.headers.get("retry-after")).toBe("5");
    await expectError(refused, 429, "rate_limited", /sent more than 30 messages a minute/);
    api.control.failures.set(
      "submit",
      new RateLimitedError("dispatch took 20 new chats", 30_000, { code: "too_many_new_chats" }),
    );
    const stranger = await send();
    expect(stranger.headers.get("retry-after")).toBe("30");
    await expectError(stranger, 429, "too_many_new_chats", /took 20 new chats/);
  });

  it("limits all chats together", async () => {
    const api = await startApi({ limits: { messagesPerMinute: 3 } });
    for (const chatId of ["a", "b", "c"]) {
      expect((await api.post("/v1/messages", { chat_id: chatId, text: "hi" })).status).toBe(202);
    }
    const refused = await api.post("/v1/messages", { chat_id: "d", text: "hi" });
    expect(refused.headers.get("retry-after")).toBe("20");
    await expectError(refused, 429, "rate_limited", /more than 3 messages a minute over HTTP/);
  });

  it("does not charge requests that fail validation", async () => {
    const api = await startApi({ limits: { messagesPerMinute: 1 } });
    expect((await api.post("/v1/messages", { chat_id: "a" })).status).toBe(400);
    expect((await api.post("/v1/messages", { chat_id: "a", text: "hi" })).status).toBe(202);
  });

  it("does not limit the control routes", async () => {
    const api = await startApi({ limits: { messagesPerMinute: 1 } });
    for (let index = 0; index < 5; index++)
      expect((await api.call("/v1/sessions")).status).toBe(200);
  });
});
