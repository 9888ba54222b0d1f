import { afterEach, describe, expect, it } from "vitest";
import { closeApis, expectError, startApi } from "./http-harness.js";

afterEach(closeApis);

describe("sessions", () => {
  it("lists sessions", async () => {
    const api = await startApi();
    const first = api.control.addSession({ chat_id: "+15551234567" });
    const second = api.control.addSession({ chat_id: "bob@example.com", session_name: "bob" });
    const response = await api.call("/v1/sessions");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual([first, second]);
  });

  it("shows one session by its URL-encoded chat id", async () => {
    const api = await startApi();
    const view = api.control.addSession({ chat_id: "+15551234567" });
    const response = await api.call("/v1/sessions/%2B15551234567");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(view);
  });

  it("takes a + left unencoded as a +, not a space", async () => {
    const api = await startApi();
    api.control.addSession({ chat_id: "+15551234567" });
    expect((await api.call("/v1/sessions/+15551234567")).status).toBe(200);
  });

  it("decodes a chat id holding a slash, a semicolon or an at sign", async () => {
    const api = await startApi();
    api.control.addSession({ chat_id: "iMessage;+;chat/42" });
    api.control.addSession({ chat_id: "a@example.com" });
    const encoded = encodeURIComponent("iMessage;+;chat/42");
    expect((await api.call(`/v1/sessions/${encoded}`)).status).toBe(200);
    expect((await api.call("/v1/sessions/a%40example.com")).status).toBe(200);
    const restarted = await api.call(`/v1/sessions/${encoded}/restart`, { method: "POST" });
    expect(restarted.status).toBe(200);
    expect(api.control.restarts).toEqual(["iMessage;+;chat/42"]);
  });

  it("answers 404 for a chat without a session", async () => {
    const api = await startApi();
    await expectError(
      await api.call("/v1/sessions/%2B19990000000"),
      404,
      "not_found",
      /\+19990000000/,
    );
  });

  it("refuses a chat id longer than 256 characters", async () => {
    const api = await startApi();
    await expectError(await api.call(`/v1/sessions/${"x".repeat(257)}`), 400, "invalid_chat_id");
  });

  it("restarts a session and returns its view", async () => {
    const api = await startApi();
    api.control.addSession({ chat_id: "+15551234567", restarts: 1 });
    const response = await api.call("/v1/sessions/%2B15551234567/restart", { method: "POST" });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      chat_id: "+15551234567",
      state: "starting",
      restarts: 2,
    });
    expect(api.control.restarts).toEqual(["+15551234567"]);
  });

  it("maps restarting an unknown chat to 404", async () => {
    const api = await startApi();
    const response = await api.call("/v1/sessions/nobody/restart", { method: "POST" });
    await expectError(response, 404, "not_found");
  });

  it("stops a session, keeping its entry", async () => {
    const api = await startApi();
    api.control.addSession({ chat_id: "+15551234567" });
    const response = await api.call("/v1/sessions/%2B15551234567", { method: "DELETE" });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      chat_id: "+15551234567",
      stopped: true,
      forgotten: false,
      archive: null,
    });
    expect(api.control.stops).toEqual([{ chatId: "+15551234567", forget: false }]);
    expect(api.control.sessions.get("+15551234567")?.state).toBe("stopped");
  });

  it("stops and forgets with ?forget=true", async () => {
    const api = await startApi();
    api.control.addSession({ chat_id: "+15551234567" });
    const response = await api.call("/v1/sessions/%2B15551234567?forget=true", {
      method: "DELETE",
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      chat_id: "+15551234567",
      stopped: true,
      forgotten: true,
      archive: "/archive/john-doe",
    });
    expect(api.control.stops).toEqual([{ chatId: "+15551234567", forget: true }]);
    expect(api.control.sessions.has("+15551234567")).toBe(false);
  });

  it("refuses a forget that is not true, false, 1 or 0, naming every accepted value", async () => {
    const api = await startApi();
    api.control.addSession({ chat_id: "a" });
    const response = await api.call("/v1/sessions/a?forget=yes", { method: "DELETE" });
    await expectError(
      response,
      400,
      "bad_request",
      /`forget` must be true, false, 1 or 0, got "yes"/,
    );
    expect(api.control.stops).toEqual([]);
  });
});
