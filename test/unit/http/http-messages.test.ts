import { afterEach, describe, expect, it } from "vitest";
import { FakeControlPlane } from "../../support/fake-control-plane.js";
import { closeApis, expectError, startApi } from "./http-harness.js";

afterEach(closeApis);

describe("POST /v1/messages", () => {
  it("without wait: 202 with the message id as soon as the message is accepted", async () => {
    const api = await startApi();
    const response = await api.post("/v1/messages", { chat_id: "+15551234567", text: "hi" });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ message_id: "msg-1", chat_id: "+15551234567" });
    expect(api.control.submits).toHaveLength(1);
    expect(api.control.submits[0]?.options).toEqual({ wait: false });
  });

  it("with wait: 200 with the reply and the session", async () => {
    const api = await startApi();
    api.control.addSession({ chat_id: "+15551234567", session_name: "ada", session_id: "s-1" });
    const response = await api.post("/v1/messages", {
      chat_id: "+15551234567",
      text: "hello",
      wait: true,
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      chat_id: "+15551234567",
      session_name: "ada",
      session_id: "s-1",
      reply: "re: hello",
      message_id: "msg-1",
    });
    expect(api.control.submits[0]?.options).toEqual({ wait: true });
  });

  it("with wait: a silent agent is reply null", async () => {
    const api = await startApi({ control: new FakeControlPlane(() => null) });
    const response = await api.post("/v1/messages", {
      chat_id: "a@example.com",
      text: "hush",
      wait: true,
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ reply: null, session_id: null });
  });

  it("hands every field to the control plane as an http InboundMessage", async () => {
    const api = await startApi();
    const before = Date.now();
    const response = await api.post("/v1/messages", {
      chat_id: "chat123456789",
      text: "dinner?",
      sender: "+15557654321",
      group_name: "Family Chat",
      message_id: "client-7",
    });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ message_id: "client-7", chat_id: "chat123456789" });
    const message = api.control.submits[0]?.message;
    expect(message).toEqual({
      channel: "http",
      chatId: "chat123456789",
      text: "dinner?",
      sender: "+15557654321",
      groupName: "Family Chat",
      externalId: "client-7",
      receivedAt: expect.any(Date) as unknown,
    });
    expect(message?.receivedAt.getTime()).toBeGreaterThanOrEqual(before);
  });

  it("leaves optional fields out when the client did", async () => {
    const api = await startApi();
    await api.post("/v1/messages", { chat_id: "+15551234567", text: "hi" });
    expect(Object.keys(api.control.submits[0]?.message ?? {}).sort()).toEqual([
      "channel",
      "chatId",
      "receivedAt",
      "text",
    ]);
  });

  it("takes a body whatever its declared content type", async () => {
    const api = await startApi();
    const response = await api.call("/v1/messages", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: JSON.stringify({ chat_id: "+15551234567", text: "from curl -d" }),
    });
    expect(response.status).toBe(202);
  });
});

describe("request validation", () => {
  it("refuses malformed JSON", async () => {
    const api = await startApi();
    await expectError(
      await api.post("/v1/messages", '{"chat_id": "+1555",'),
      400,
      "invalid_json",
      /not valid JSON/,
    );
    expect(api.control.submits).toEqual([]);
  });

  it("refuses an empty body", async () => {
    const api = await startApi();
    await expectError(await api.post("/v1/messages", ""), 400, "invalid_json", /empty/);
  });

  it("refuses JSON that is not an object", async () => {
    const api = await startApi();
    await expectError(
      await api.post("/v1/messages", [1, 2]),
      400,
      "bad_request",
      /must be a JSON object, got an array/,
    );
    await expectError(await api.post("/v1/messages", "null"), 400, "bad_request", /got null/);
  });

  it("names a missing field and what it expects", async () => {
    const api = await startApi();
    const message = await expectError(
      await api.post("/v1/messages", { chat_id: "+15551234567" }),
      400,
      "bad_request",
    );
    expect(message).toContain("`text` is required: a string of 1 to 100000 characters");
    expect(message).not.toContain("chat_id");
  });

  it("names a field of the wrong type, with what it got", async () => {
    const api = await startApi();
    const message = await expectError(
      await api.post("/v1/messages", { chat_id: 15551234567, text: "hi", wait: "yes" }),
      400,
      "bad_request",
    );
    expect(message).toContain(
      "`chat_id` must be a string of 1 to 256 characters, got number 15551234567",
    );
    expect(message).toContain("`wait` must be true or false, got a string of 3 characters");
  });

  it("enforces lengths: empty chat id, text over 100000 characters, long message id", async () => {
    const api = await startApi();
    const message = await expectError(
      await api.post("/v1/messages", {
        chat_id: "",
        text: "x".repeat(100_001),
        message_id: "m".repeat(201),
      }),
      400,
      "bad_request",
    );
    expect(message).toContain(
      "`chat_id` must be a string of 1 to 256 characters, got an empty string",
    );
    expect(message).toContain(
      "`text` must be a string of 1 to 100000 characters, got a string of 100001 characters",
    );
    expect(message).toContain("`message_id` must be a string of 1 to 200 characters");
  });

  it("accepts text of exactly 100000 characters", async () => {
    const api = await startApi();
    const response = await api.post("/v1/messages", {
      chat_id: "+1555",
      text: "x".repeat(100_000),
    });
    expect(response.status).toBe(202);
  });

  it("refuses unknown keys, naming them and the allowed ones", async () => {
    const api = await startApi();
    const message = await expectError(
      await api.post("/v1/messages", { chat_id: "+1555", text: "hi", chatid: "x", reply_to: 1 }),
      400,
      "bad_request",
    );
    expect(message).toContain("unknown fields `chatid`, `reply_to`");
    expect(message).toContain("`group_name`");
    expect(api.control.submits).toEqual([]);
  });
});

describe("Server-Timing", () => {
  const totalOf = (response: Response): number => {
    const match = /total;dur=([0-9.]+)/.exec(response.headers.get("server-timing") ?? "");
    expect(match, "a Server-Timing total").not.toBeNull();
    return Number(match![1]);
  };

  it("spans a waited-for turn, from the request's arrival to its reply", async () => {
    const control = new FakeControlPlane();
    let release!: () => void;
    control.gate = new Promise((resolve) => (release = resolve));
    const api = await startApi({ control });
    const responded = api.post("/v1/messages", {
      chat_id: "+15551234567",
      text: "hi",
      wait: true,
    });
    // Held for 60 ms from the moment the request reached the control plane, so the daemon's
    // span (which began before that) is at least as long.
    await expect.poll(() => control.submits.length).toBe(1);
    setTimeout(release, 60);
    const response = await responded;
    expect(response.status).toBe(200);
    // A lower bound only: the turn took at least the 60 ms the control plane held it.
    expect(totalOf(response)).toBeGreaterThanOrEqual(55);
  });

  it("is on error responses too", async () => {
    const api = await startApi();
    const response = await api.call("/v1/messages", {
      method: "POST",
      headers: { Authorization: "Bearer wrong" },
      body: "{}",
    });
    expect(response.status).toBe(401);
    expect(totalOf(response)).toBeGreaterThanOrEqual(0);
  });
});
