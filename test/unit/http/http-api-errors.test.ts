import { afterEach, describe, expect, it } from "vitest";
import { RateLimitedError } from "../../../src/channels/http/http-errors.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { closeApis, expectError, startApi, TOKEN } from "./http-harness.js";

afterEach(closeApis);

describe("errors from the control plane", () => {
  it.each([
    ["invalid_chat_id", 400],
    ["unknown_sender", 403],
    ["not_found", 404],
    ["payload_too_large", 413],
    ["rate_limited", 429],
    ["queue_full", 429],
    ["shutting_down", 503],
    ["quarantined", 503],
    ["no_credentials", 503],
  ])("DispatchError %s -> %i, with its message", async (code, status) => {
    const api = await startApi();
    const message = `${code} happened; do something about it`;
    api.control.failures.set("submit", new DispatchError(code, message));
    const response = await api.post("/v1/messages", { chat_id: "+1555", text: "hi" });
    if (status === 429) expect(response.headers.get("retry-after")).toBe("1");
    else expect(response.headers.get("retry-after")).toBeNull();
    expect(await expectError(response, status, code)).toBe(message);
    // Expected errors are not logged as failures.
    expect(api.logger.records.filter((record) => record.level === "error")).toEqual([]);
  });

  it("passes the daemon's own retry hint through Retry-After", async () => {
    const api = await startApi();
    api.control.failures.set(
      "submit",
      new RateLimitedError("queue is full", 7_200, { code: "queue_full" }),
    );
    const response = await api.post("/v1/messages", { chat_id: "+1555", text: "hi" });
    expect(response.headers.get("retry-after")).toBe("8");
    await expectError(response, 429, "queue_full");
  });

  it("maps errors from the session routes too", async () => {
    const api = await startApi();
    api.control.addSession({ chat_id: "a" });
    api.control.failures.set(
      "restartSession",
      new DispatchError("quarantined", "too many restarts"),
    );
    await expectError(
      await api.call("/v1/sessions/a/restart", { method: "POST" }),
      503,
      "quarantined",
    );
    api.control.failures.set(
      "stopSession",
      new DispatchError("shutting_down", "dispatch is going away"),
    );
    await expectError(await api.call("/v1/sessions/a", { method: "DELETE" }), 503, "shutting_down");
  });

  it("turns an unmapped DispatchError into a 500 that keeps its code, and logs it", async () => {
    const api = await startApi();
    api.control.failures.set(
      "listSessions",
      new DispatchError("registry_corrupt", "sessions.json is broken"),
    );
    await expectError(
      await api.call("/v1/sessions"),
      500,
      "registry_corrupt",
      /sessions.json is broken/,
    );
    expect(api.logger.records.filter((record) => record.level === "error")).toHaveLength(1);
  });

  it("turns anything else into 500 internal, logged with its cause and never leaked", async () => {
    const api = await startApi();
    const cause = new TypeError("Cannot read properties of undefined (reading 'secretThing')");
    api.control.failures.set("submit", cause);
    const response = await api.post("/v1/messages", { chat_id: "+1555", text: "hi" });
    const message = await expectError(response, 500, "internal", /daemon's log/);
    expect(message).not.toContain("secretThing");
    expect(message).not.toMatch(/at .*\.ts/);
    const logged = api.logger.records.find((record) => record.level === "error");
    expect(logged?.message).toBe("http-request-fail");
    expect(logged?.fields).toMatchObject({ method: "POST", path: "/v1/messages", cause });
  });

  it("survives a control plane that throws something that is not an Error", async () => {
    const api = await startApi();
    api.control.failures.set("health", "a bare string");
    await expectError(await fetch(`${api.base}/healthz`), 500, "internal");
    expect(api.logger.records.some((record) => record.level === "error")).toBe(true);
  });
});

describe("request log", () => {
  it("logs method, path, status and duration at debug, never the token or the body", async () => {
    const api = await startApi();
    await api.post("/v1/messages", { chat_id: "+1555", text: "a very private text" });
    await fetch(`${api.base}/v1/sessions`, {
      headers: { Authorization: "Bearer wrong-token-value" },
    });
    const requests = api.logger.records.filter((record) => record.message === "http-request");
    expect(requests).toHaveLength(2);
    expect(requests[0]).toMatchObject({
      level: "debug",
      fields: {
        method: "POST",
        path: "/v1/messages",
        status: 202,
        ms: expect.any(Number) as unknown,
      },
    });
    expect(requests[1]?.fields).toMatchObject({ method: "GET", path: "/v1/sessions", status: 401 });
    const everything = JSON.stringify(api.logger.records);
    expect(everything).not.toContain(TOKEN);
    expect(everything).not.toContain("wrong-token-value");
    expect(everything).not.toContain("a very private text");
  });
});
