import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Hono } from "hono";
import { beforeEach, describe, expect, it } from "vitest";
import { DispatchError } from "../../../src/utils/errors.js";
import { findClientFolder } from "../../../src/dashboard/client-assets.js";
import { createDashboardRoutes, withDashboard } from "../../../src/dashboard/dashboard-routes.js";
import type { TranscriptTurn } from "../../../src/dashboard/transcript.js";
import type { Logger, LogFields } from "../../../src/logging/logger.js";
import { createLogRing, type LogRing } from "../../../src/logging/log-ring.js";
import { FakeDashboardContacts } from "./fake-dashboard-contacts.js";
import { FakeDashboardSource } from "./fake-dashboard-source.js";

const TOKEN = "test-token-0123456789";
const AUTH = { Authorization: `Bearer ${TOKEN}` };
const JOHN = "+15551234567";
const CLIENT = path.resolve(import.meta.dirname, "../../../src/dashboard/client");

function recordingLogger(): Logger & { errors: { message: string; fields?: LogFields }[] } {
  const errors: { message: string; fields?: LogFields }[] = [];
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    warn: () => {},
    error: (message, fields) => errors.push({ message, ...(fields ? { fields } : {}) }),
    child: () => logger,
  };
  return Object.assign(logger, { errors });
}

let source: FakeDashboardSource;
let contacts: FakeDashboardContacts;
let log: LogRing;
let logger: ReturnType<typeof recordingLogger>;
let app: Hono;

/** The routes over this test's fakes; `options` changes what the test is about. */
function routes(options: Partial<Parameters<typeof createDashboardRoutes>[0]> = {}): Hono {
  return createDashboardRoutes({ source, contacts, log, token: TOKEN, logger, ...options });
}

beforeEach(() => {
  source = new FakeDashboardSource();
  source.add({ chat_id: JOHN, contact_name: "John Doe", session_name: "john-doe" });
  contacts = new FakeDashboardContacts();
  log = createLogRing();
  logger = recordingLogger();
  app = routes({ heartbeatMs: 20 });
});

const post = (route: string, body?: unknown) =>
  app.request(route, {
    method: "POST",
    headers: { ...AUTH, "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });

describe("the dashboard page and its files", () => {
  it("serves the page without a token, with a policy that allows nothing from elsewhere", async () => {
    const response = await app.request("/");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const policy = response.headers.get("content-security-policy")!;
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("connect-src 'self'");
    expect(policy).not.toContain("unsafe-inline");
    const html = await response.text();
    expect(html).toContain('<script type="module" src="/assets/app.js"></script>');
    expect(html).toContain('<label for="token">API token</label>');
  });

  it("serves each client file from memory, with its type and an ETag", async () => {
    const script = await app.request("/assets/app.js");
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(await script.text()).toBe(await readFile(path.join(CLIENT, "app.js"), "utf8"));
    const css = await app.request("/assets/style.css");
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");

    const etag = script.headers.get("etag")!;
    const again = await app.request("/assets/app.js", { headers: { "If-None-Match": etag } });
    expect(again.status).toBe(304);
  });

  it("finds its files beside the module, or back in src/ when running the build in dist/", () => {
    const repo = path.resolve(import.meta.dirname, "../../..");
    expect(findClientFolder()).toBe(CLIENT);
    const built = pathToFileURL(path.join(repo, "dist", "dashboard", "client-assets.js")).href;
    expect(findClientFolder(built)).toBe(CLIENT);
    expect(
      findClientFolder(pathToFileURL("/nowhere/dashboard/client-assets.js").href),
    ).toBeUndefined();
  });

  it("refuses names that are not its files, including ways out of its folder", async () => {
    for (const name of ["nope.js", "..%2Fdashboard-routes.ts", "%2E%2E%2F%2E%2E%2Fpackage.json"]) {
      const response = await app.request(`/assets/${name}`);
      expect(response.status, name).toBe(404);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe("not_found");
    }
    expect((await app.request("/assets/../package.json")).status).toBe(404);
  });

  it("loads nothing from another origin: no URL in any client file but the SVG namespace", async () => {
    for (const name of await readdir(CLIENT)) {
      const text = await readFile(path.join(CLIENT, name), "utf8");
      const urls = (text.match(/https?:\/\/[^\s"'`)]+/g) ?? []).filter(
        (url) => url !== "http://www.w3.org/2000/svg",
      );
      expect(urls, name).toEqual([]);
      expect(text, name).not.toMatch(/\bsrc="\/\/|url\(\s*["']?\/\//);
    }
  });
});

describe("the dashboard API", () => {
  it("wants the bearer token on every route, compared whole", async () => {
    const attempts: Record<string, string>[] = [
      {},
      { Authorization: "Bearer wrong" },
      { Authorization: TOKEN },
      { Authorization: `Bearer ${TOKEN}x` },
    ];
    for (const headers of attempts) {
      const response = await app.request("/v1/dashboard/sessions", { headers });
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toBe("Bearer");
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
        "unauthorized",
      );
    }
    expect((await app.request("/v1/dashboard/health")).status).toBe(401);
    expect((await app.request("/v1/dashboard/events")).status).toBe(401);
    expect(
      (await app.request(`/v1/dashboard/sessions/${JOHN}/restart`, { method: "POST" })).status,
    ).toBe(401);
    expect(source.calls).toEqual([]);
    expect(() => routes({ token: " " })).toThrow("non-empty token");
  });

  it("lists sessions, and shows one with its transcript", async () => {
    const turn: TranscriptTurn = {
      index: 1,
      started_at: null,
      ended_at: null,
      duration_ms: null,
      cost_usd: null,
      tokens: null,
      model: null,
      inputs: [],
      steps: [],
      is_error: false,
    };
    source.transcripts.set(JOHN, [turn, { ...turn, index: 2 }, { ...turn, index: 3 }]);
    const list = await app.request("/v1/dashboard/sessions", { headers: AUTH });
    expect(await list.json()).toEqual([
      expect.objectContaining({ chat_id: JOHN, memory_bytes: null }),
    ]);

    const limited = routes({ maxTurns: 2 });
    const detail = await limited.request(`/v1/dashboard/sessions/${encodeURIComponent(JOHN)}`, {
      headers: AUTH,
    });
    expect(detail.status).toBe(200);
    const body = (await detail.json()) as {
      session: { chat_id: string };
      transcript: TranscriptTurn[];
      transcript_turns: number;
    };
    expect(body.session.chat_id).toBe(JOHN);
    expect(body.transcript.map((item) => item.index)).toEqual([2, 3]);
    expect(body.transcript_turns).toBe(3);
  });

  it("answers 404 for an unknown chat or route, and 400 for a chat id too long to be one", async () => {
    const missing = await app.request("/v1/dashboard/sessions/%2B15559999999", { headers: AUTH });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toContain(
      "+15559999999",
    );
    const invalid = await app.request(`/v1/dashboard/sessions/${"7".repeat(300)}`, {
      headers: AUTH,
    });
    expect(invalid.status).toBe(400);
    const unknownRoute = await app.request("/v1/dashboard/nothing", { headers: AUTH });
    expect(unknownRoute.status).toBe(404);
    expect(((await unknownRoute.json()) as { error: { code: string } }).error.code).toBe(
      "not_found",
    );
  });

  it("says whether the daemon runs in demo mode", async () => {
    expect(await (await app.request("/v1/dashboard/about", { headers: AUTH })).json()).toEqual({
      version: "0.1.0-test",
      demo: false,
      registry_fields: ["session_name", "tier"],
    });
    source.demo = true;
    const response = await app.request("/v1/dashboard/about", { headers: AUTH });
    expect(await response.json()).toMatchObject({ demo: true });
    expect((await app.request("/v1/dashboard/about")).status).toBe(401);
  });

  it("serves the health snapshot", async () => {
    const response = await app.request("/v1/dashboard/health", { headers: AUTH });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: "ok", spares: { configured: 1 } });
  });

  it("restarts, stops and forgets sessions, and maps the daemon's errors to statuses", async () => {
    const restarted = await post(`/v1/dashboard/sessions/${encodeURIComponent(JOHN)}/restart`);
    expect(restarted.status).toBe(200);
    expect(await restarted.json()).toMatchObject({ chat_id: JOHN, state: "starting", restarts: 1 });
    expect(
      await (await post(`/v1/dashboard/sessions/${encodeURIComponent(JOHN)}/stop`)).json(),
    ).toEqual({
      chat_id: JOHN,
      stopped: true,
    });
    source.failure = new DispatchError("shutting_down", "dispatch is shutting down");
    const refused = await post(`/v1/dashboard/sessions/${encodeURIComponent(JOHN)}/forget`);
    expect(refused.status).toBe(503);
    const forgotten = await post(`/v1/dashboard/sessions/${encodeURIComponent(JOHN)}/forget`);
    expect(await forgotten.json()).toEqual({ chat_id: JOHN, forgotten: true });
    expect(source.calls).toEqual([
      `restart ${JOHN}`,
      `stop ${JOHN}`,
      `forget ${JOHN}`,
      `forget ${JOHN}`,
    ]);

    source.failure = new Error("disk on fire at /secret/path");
    const broken = await post(`/v1/dashboard/sessions/${encodeURIComponent(JOHN)}/stop`);
    expect(broken.status).toBe(500);
    expect(await broken.text()).not.toContain("/secret/path");
    expect(logger.errors.map((entry) => entry.message)).toEqual(["dashboard-request-fail"]);
  });

  it("sends a message as the chat and answers with the reply, refusing bodies that are not one", async () => {
    const sent = await post(`/v1/dashboard/sessions/${encodeURIComponent(JOHN)}/send`, {
      text: "hello",
    });
    expect(sent.status).toBe(200);
    expect(await sent.json()).toEqual({ chat_id: JOHN, reply: "re: hello" });
    for (const body of ["", "not json", { text: "" }, { text: 5 }, { text: "hi", extra: true }]) {
      const response = await post(`/v1/dashboard/sessions/${encodeURIComponent(JOHN)}/send`, body);
      expect(response.status, JSON.stringify(body)).toBe(400);
    }
    expect(source.calls).toEqual([`send ${JOHN} hello`]);
  });
});

describe("the dashboard's event stream", () => {
  async function readEvents(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    count: number,
    buffer: { text: string },
  ): Promise<{ event: string; data: string }[]> {
    const decoder = new TextDecoder();
    for (;;) {
      const blocks = buffer.text.split("\n\n");
      if (blocks.length > count) {
        buffer.text = blocks.slice(count).join("\n\n");
        return blocks.slice(0, count).map((block) => ({
          event: /^event: (.*)$/m.exec(block)?.[1] ?? "",
          data: /^data: (.*)$/m.exec(block)?.[1] ?? "",
        }));
      }
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended after: ${buffer.text}`);
      buffer.text += decoder.decode(value, { stream: true });
    }
  }

  it("sends the sessions on connect and on each change, heartbeats, and stops listening when closed", async () => {
    const response = await app.request("/v1/dashboard/events", { headers: AUTH });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const reader = response.body!.getReader();
    const buffer = { text: "" };

    const [first] = await readEvents(reader, 1, buffer);
    expect(first!.event).toBe("sessions");
    expect(JSON.parse(first!.data)).toEqual([
      expect.objectContaining({ chat_id: JOHN, state: "idle" }),
    ]);
    expect(source.listeners.size).toBe(1);

    source.change({ chat_id: JOHN, state: "busy" });
    const events = await readEvents(reader, 2, buffer);
    const sessions = events.find((event) => event.event === "sessions");
    expect(JSON.parse(sessions!.data)).toEqual([expect.objectContaining({ state: "busy" })]);
    // Heartbeats every 20 ms here (15 s in the daemon).
    expect((await readEvents(reader, 2, buffer)).some((event) => event.event === "heartbeat")).toBe(
      true,
    );

    await reader.cancel();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(source.listeners.size).toBe(0);
  });

  it("ends the stream when the source says no more changes will come (shutdown)", async () => {
    const response = await app.request("/v1/dashboard/events", { headers: AUTH });
    const reader = response.body!.getReader();
    await readEvents(reader, 1, { text: "" });
    source.end();
    let done = false;
    while (!done) done = (await reader.read()).done;
    expect(done).toBe(true);
  });
});

describe("withDashboard", () => {
  it("serves the dashboard's routes and hands everything else to the API untouched", async () => {
    const api = new Hono();
    api.get("/v1/sessions", (c) => c.json({ from: "api" }));
    api.notFound((c) => c.json({ error: { code: "not_found", message: "api 404" } }, 404));
    const combined = withDashboard(app, api);

    expect((await combined.request("/")).headers.get("content-type")).toContain("text/html");
    expect(await (await combined.request("/v1/sessions")).json()).toEqual({ from: "api" });
    const elsewhere = await combined.request("/nope");
    expect(elsewhere.status).toBe(404);
    expect(await elsewhere.json()).toEqual({ error: { code: "not_found", message: "api 404" } });
    expect((await combined.request("/v1/dashboard/sessions")).status).toBe(401);
    expect((await combined.request("/v1/dashboard/sessions", { headers: AUTH })).status).toBe(200);
  });
});
