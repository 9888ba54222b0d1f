import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createApiClient, createApiClientFor, readApiToken } from "../../../src/cli/api-client.js";
import { DispatchError } from "../../../src/utils/errors.js";
import {
  TOKEN,
  closedPort,
  sessionView,
  startFakeDaemon,
  withTempHome,
  type FakeDaemon,
} from "./cli-harness.js";

const HEALTH = {
  status: "ok",
  version: "0.1.0",
  uptime_seconds: 60,
  sessions: { registered: 1, live: 0 },
};

let daemon: FakeDaemon | undefined;
afterEach(async () => {
  await daemon?.close();
  daemon = undefined;
});

async function rejection(promise: Promise<unknown>): Promise<DispatchError> {
  const error: unknown = await promise.then(
    () => new Error("expected a rejection"),
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(DispatchError);
  return error as DispatchError;
}

const notRunning = (port: number): string =>
  `dispatch is not running on 127.0.0.1:${port}. Start it with \`npm start\` (or \`dispatch start\`)`;

describe("createApiClient", () => {
  it("sends the bearer token and percent-encodes the chat id in the path", async () => {
    daemon = await startFakeDaemon(() => ({ status: 200, body: sessionView() }));
    const client = createApiClient({ port: daemon.port, readToken: () => Promise.resolve(TOKEN) });
    const session = await client.getSession("+15551234567");
    expect(session.session_name).toBe("john-doe");
    expect(daemon.requests).toEqual([
      {
        method: "GET",
        url: "/v1/sessions/%2B15551234567",
        authorization: `Bearer ${TOKEN}`,
        body: undefined,
      },
    ]);
  });

  it("asks /healthz without a token", async () => {
    daemon = await startFakeDaemon(() => ({ status: 200, body: HEALTH }));
    const client = createApiClient({
      port: daemon.port,
      readToken: () => Promise.reject(new Error("must not be read")),
    });
    expect(await client.health()).toEqual(HEALTH);
    expect(daemon.requests[0]?.authorization).toBeUndefined();
  });

  it("reads the health of a daemon that is shutting down (503) instead of failing", async () => {
    const shuttingDown = { ...HEALTH, status: "shutting_down" };
    daemon = await startFakeDaemon(() => ({ status: 503, body: shuttingDown }));
    const client = createApiClient({ port: daemon.port, readToken: () => Promise.resolve(TOKEN) });
    expect(await client.health()).toEqual(shuttingDown);
  });

  it("turns an error body into a DispatchError with its code and message", async () => {
    daemon = await startFakeDaemon(() => ({
      status: 403,
      body: { error: { code: "unknown_sender", message: "Nobody answers +1555." } },
    }));
    const client = createApiClient({ port: daemon.port, readToken: () => Promise.resolve(TOKEN) });
    const error = await rejection(client.sendMessage({ chatId: "+1555", text: "hi" }));
    expect(error.code).toBe("unknown_sender");
    expect(error.message).toBe("Nobody answers +1555.");
  });

  it("names the status when an error has no error body", async () => {
    daemon = await startFakeDaemon(() => ({ status: 500 }));
    const client = createApiClient({ port: daemon.port, readToken: () => Promise.resolve(TOKEN) });
    const error = await rejection(client.listSessions());
    expect(error.code).toBe("http_500");
    expect(error.message).toContain("GET /v1/sessions with 500");
  });

  it("sends snake_case message fields and stops with ?forget=true, returning the archive", async () => {
    daemon = await startFakeDaemon((request) =>
      request.method === "DELETE"
        ? { status: 200, body: { stopped: true, forgotten: true, archive: "/f/2026-11-25-chat" } }
        : { status: 202, body: { message_id: "m-1", chat_id: "chat1" } },
    );
    const client = createApiClient({ port: daemon.port, readToken: () => Promise.resolve(TOKEN) });
    await client.sendMessage({ chatId: "chat1", text: "hi", sender: "+1555", groupName: "Fam" });
    expect(await client.stopSession("chat1", { forget: true })).toEqual({
      archive: "/f/2026-11-25-chat",
    });
    expect(daemon.requests.map((request) => [request.method, request.url, request.body])).toEqual([
      [
        "POST",
        "/v1/messages",
        { chat_id: "chat1", text: "hi", sender: "+1555", group_name: "Fam", wait: false },
      ],
      ["DELETE", "/v1/sessions/chat1?forget=true", undefined],
    ]);
  });

  it("says dispatch is not running when the connection is refused", async () => {
    const port = await closedPort();
    const client = createApiClient({ port, readToken: () => Promise.resolve(TOKEN) });
    const error = await rejection(client.listSessions());
    expect(error.code).toBe("daemon_not_running");
    expect(error.message).toBe(notRunning(port));
  });

  it("says not running, not 'no token', when the token file is missing and nothing listens", async () => {
    await withTempHome(async (home) => {
      const port = await closedPort();
      const client = createApiClient({
        port,
        readToken: () => readApiToken({}, join(home, "missing-token")),
      });
      const error = await rejection(client.listSessions());
      expect(error.code).toBe("daemon_not_running");
      expect(error.message).toBe(notRunning(port));
    });
  });

  it("reports the missing token when the daemon does answer", async () => {
    await withTempHome(async (home) => {
      daemon = await startFakeDaemon(() => ({ status: 200, body: HEALTH }));
      const client = createApiClient({
        port: daemon.port,
        readToken: () => readApiToken({}, join(home, "missing-token")),
      });
      const error = await rejection(client.listSessions());
      expect(error.code).toBe("api_token_missing");
      expect(error.message).toContain(join(home, "missing-token"));
      // Only the health probe went out: no request without a token.
      expect(daemon.requests.map((request) => request.url)).toEqual(["/healthz"]);
    });
  });
});

describe("readApiToken", () => {
  it("prefers DISPATCH_API_TOKEN and otherwise reads the file, trimmed", async () => {
    await withTempHome(async (home) => {
      const file = join(home, "api-token");
      await writeFile(file, "from-file\n");
      expect(await readApiToken({ DISPATCH_API_TOKEN: " from-env " }, file)).toBe("from-env");
      expect(await readApiToken({ DISPATCH_API_TOKEN: "  " }, file)).toBe("from-file");
    });
  });

  it("refuses an empty token file", async () => {
    await withTempHome(async (home) => {
      const file = join(home, "api-token");
      await writeFile(file, "\n");
      const error = await rejection(readApiToken({}, file));
      expect(error.code).toBe("api_token_missing");
      expect(error.message).toContain("is empty");
    });
  });
});

describe("createApiClientFor", () => {
  it("takes the port from config.json when DISPATCH_PORT is unset", async () => {
    await withTempHome(async (home) => {
      daemon = await startFakeDaemon(() => ({ status: 200, body: [] }));
      const dispatchHome = join(home, "dispatch");
      await mkdir(join(dispatchHome, "state"), { recursive: true });
      await writeFile(join(dispatchHome, "config.json"), JSON.stringify({ port: daemon.port }));
      await writeFile(join(dispatchHome, "state", "api-token"), "file-token\n", { mode: 0o600 });
      const client = await createApiClientFor({ env: {}, homeDir: home, platform: "linux" });
      expect(client.port).toBe(daemon.port);
      expect(await client.listSessions()).toEqual([]);
      expect(daemon.requests[0]?.authorization).toBe("Bearer file-token");
    });
  });

  it("lets DISPATCH_PORT win over config.json", async () => {
    await withTempHome(async (home) => {
      const dispatchHome = join(home, "dispatch");
      await mkdir(dispatchHome, { recursive: true });
      await writeFile(join(dispatchHome, "config.json"), JSON.stringify({ port: 1234 }));
      const client = await createApiClientFor({
        env: { DISPATCH_PORT: "4321" },
        homeDir: home,
        platform: "linux",
      });
      expect(client.port).toBe(4321);
    });
  });

  it("defaults to port 7878", async () => {
    await withTempHome(async (home) => {
      const client = await createApiClientFor({ env: {}, homeDir: home, platform: "linux" });
      expect(client.port).toBe(7878);
    });
  });
});
