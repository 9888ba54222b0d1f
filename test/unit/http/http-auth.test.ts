import { afterEach, describe, expect, it } from "vitest";
import { createHttpApi } from "../../../src/channels/http/http-api.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { FakeControlPlane } from "../../support/fake-control-plane.js";
import { closeApis, expectError, startApi, TOKEN } from "./http-harness.js";

afterEach(closeApis);

describe("authentication", () => {
  it("refuses a request without a token, asking for a bearer token", async () => {
    const api = await startApi();
    const response = await fetch(`${api.base}/v1/sessions`);
    expect(response.headers.get("www-authenticate")).toBe("Bearer");
    await expectError(response, 401, "unauthorized", /Missing bearer token.*api-token/);
  });

  it("refuses a wrong token, whatever its length", async () => {
    const api = await startApi();
    for (const wrong of ["x", TOKEN.slice(0, -1) + "X", TOKEN + "extra"]) {
      const response = await api.call("/v1/sessions", {
        headers: { Authorization: `Bearer ${wrong}` },
      });
      expect(response.headers.get("www-authenticate")).toBe("Bearer");
      await expectError(response, 401, "unauthorized", /token is wrong/);
    }
  });

  it("refuses another scheme", async () => {
    const api = await startApi();
    const response = await api.call("/v1/sessions", {
      headers: { Authorization: `Basic ${TOKEN}` },
    });
    await expectError(response, 401, "unauthorized", /Bearer <token>/);
  });

  it("accepts the right token, with the scheme in any case", async () => {
    const api = await startApi();
    expect((await api.call("/v1/sessions")).status).toBe(200);
    const lower = await api.call("/v1/sessions", { headers: { Authorization: `bearer ${TOKEN}` } });
    expect(lower.status).toBe(200);
  });

  it("checks the token before reading a body", async () => {
    const api = await startApi();
    const response = await fetch(`${api.base}/v1/messages`, {
      method: "POST",
      body: JSON.stringify({ chat_id: "+15551234567", text: "hi" }),
    });
    await expectError(response, 401, "unauthorized");
    expect(api.control.submits).toEqual([]);
  });

  it("guards unknown routes too, so they reveal nothing", async () => {
    const api = await startApi();
    await expectError(await fetch(`${api.base}/nowhere`), 401, "unauthorized");
  });

  it("guards /metrics", async () => {
    const api = await startApi();
    await expectError(await fetch(`${api.base}/metrics`), 401, "unauthorized");
  });
});

describe("GET /healthz", () => {
  it("answers without a token", async () => {
    const api = await startApi();
    api.control.addSession({ chat_id: "+15551234567" });
    const response = await fetch(`${api.base}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      status: "ok",
      version: "0.1.0-test",
      uptime_seconds: 42,
      sessions: { registered: 1, live: 0 },
    });
  });

  it("answers 503 with the health view while shutting down", async () => {
    const api = await startApi();
    api.control.status = "shutting_down";
    const response = await fetch(`${api.base}/healthz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ status: "shutting_down" });
  });
});

describe("GET /metrics", () => {
  it("serves the control plane's text with its content type", async () => {
    const api = await startApi();
    const response = await api.call("/metrics");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe(api.control.metricsContentType);
    expect(await response.text()).toBe(api.control.metricsText);
  });
});

describe("routes and methods", () => {
  it("answers 404 not_found for an unknown route", async () => {
    const api = await startApi();
    await expectError(
      await api.call("/v2/whatever"),
      404,
      "not_found",
      /no route GET \/v2\/whatever/,
    );
  });

  it("answers 405 with Allow for a known route and the wrong method", async () => {
    const api = await startApi();
    const put = await api.call("/v1/messages", { method: "PUT", body: "{}" });
    expect(put.headers.get("allow")).toBe("POST");
    await expectError(
      put,
      405,
      "method_not_allowed",
      /PUT is not allowed on \/v1\/messages; use POST/,
    );

    const get = await api.call("/v1/messages");
    await expectError(get, 405, "method_not_allowed");

    const postSession = await api.call("/v1/sessions/a", { method: "POST" });
    expect(postSession.headers.get("allow")).toBe("GET, DELETE, HEAD");
    await expectError(postSession, 405, "method_not_allowed");
    expect(api.control.submits).toEqual([]);
  });
});

describe("createHttpApi", () => {
  it("refuses an empty token", () => {
    expect(() =>
      createHttpApi({ control: new FakeControlPlane(), token: " ", logger: createMemoryLogger() }),
    ).toThrow(expect.objectContaining({ code: "invalid_api_token" }));
  });

  it("refuses a body limit that is not a positive integer", () => {
    expect(() =>
      createHttpApi({
        control: new FakeControlPlane(),
        token: TOKEN,
        logger: createMemoryLogger(),
        limits: { maxBodyBytes: 0 },
      }),
    ).toThrow(/`maxBodyBytes` to be a positive integer, got `0`/);
  });
});
