/**
 * The daemon with `DISPATCH_DATABASE_URL` (issue 14): `dispatch start` as a child process keeps its
 * registry and its transcript copy in PostgreSQL (the test run's private server), serves a chat,
 * is stopped, loses `~/.claude` and `sessions.json`, and resumes the chat with its context and
 * session id from the database. The URL carries a password (the test server trusts every
 * connection, so any password passes): it appears in no log line, `dispatch status` or dashboard
 * answer.
 */
import { readFile, rm } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { runCli, startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { readRegistryRows } from "../support/home-registry.js";
import { createTestDatabase } from "../support/postgres-server.js";
import { makeDaemonHome, type DaemonHome } from "../support/daemon-home.js";

const JOHN = "+15551234567";
const PASSWORD = "Pg-Secret-4f9d2c";

let model: StandInModel;
let home: DaemonHome;
let env: NodeJS.ProcessEnv;
let database: pg.Client;
let daemon: DaemonProcess | undefined;

interface Reply {
  chat_id: string;
  session_id: string;
  reply: string | null;
}

beforeAll(async () => {
  const url = await createTestDatabase();
  model = await startStandInModel();
  const withPassword = new URL(url);
  withPassword.password = PASSWORD;
  home = await makeDaemonHome({
    modelUrl: model.url,
    contacts: { contacts: [{ name: "John Doe", tier: "favorite", handles: [JOHN] }] },
    env: {
      DISPATCH_LOG_LEVEL: "debug",
      DISPATCH_DATABASE_URL: withPassword.toString(),
      DISPATCH_NODE_ID: "node-a",
    },
  });
  env = home.env;
  database = new pg.Client({ connectionString: url });
  await database.connect();
});

afterAll(async () => {
  if (daemon) await daemon.stop("SIGKILL");
  await database?.end();
  await model?.close();
  await home?.remove();
});

async function send(text: string): Promise<Reply> {
  const response = await daemon!.api("POST", "/v1/messages", { chat_id: JOHN, text, wait: true });
  expect(response.status, JSON.stringify(response.json)).toBe(200);
  return response.json as Reply;
}

async function registryRow(): Promise<{ session_name: string; session_id: string } | undefined> {
  const { rows } = await database.query<{ session_name: string; session_id: string }>(
    "SELECT session_name, session_id FROM registry WHERE chat_id = $1",
    [JOHN],
  );
  return rows[0];
}

describe("a daemon on PostgreSQL", () => {
  let first: Reply;

  it("serves a chat, with its registry row and transcript copy in the database", async () => {
    daemon = await startDaemonProcess(env);
    first = await send("remember the word cinnamon");
    expect(first.reply).toContain("I will remember cinnamon");

    expect(await registryRow()).toEqual({ session_name: "john-doe", session_id: first.session_id });
    const { rows } = await database.query<{ entries: string }>(
      "SELECT count(*) AS entries FROM transcript_entries WHERE session_id = $1",
      [first.session_id],
    );
    expect(Number(rows[0]!.entries)).toBeGreaterThan(0);
    // Nothing of the registry went to the SQLite state database.
    expect(readRegistryRows(home.home)).toEqual({});
    expect(daemon.output()).toMatch(/"database":"postgres:\/\/postgres@127\.0\.0\.1:\d+\//);
    expect(daemon.output()).toContain('"node":"node-a"');
  });

  it("never shows the database password", async () => {
    const status = await runCli(["status"], env);
    expect(status.code, status.stderr).toBe(0);
    const answers = await Promise.all(
      ["/v1/dashboard/about", "/v1/dashboard/health", "/v1/dashboard/logs", "/v1/sessions"].map(
        async (route) => JSON.stringify((await daemon!.api("GET", route)).json),
      ),
    );
    const logFile = await readFile(
      path.join(home.home, "dispatch", "state", "logs", "dispatch.log"),
      "utf8",
    );
    for (const text of [status.stdout, status.stderr, ...answers, daemon!.output(), logFile]) {
      expect(text).not.toContain(PASSWORD);
    }
  });

  it("resumes the chat with its context after a restart that lost ~/.claude and sessions.json", async () => {
    expect(await daemon!.stop("SIGTERM")).toBe(0);
    await rm(path.join(home.home, ".claude"), { recursive: true, force: true });
    await rm(path.join(home.home, "dispatch", "state", "sessions.json"), { force: true });

    daemon = await startDaemonProcess(env);
    const recall = await send("what word did I ask you to remember?");
    expect(recall.reply).toContain("You asked me to remember cinnamon");
    expect(recall.session_id).toBe(first.session_id);
    expect((await registryRow())?.session_id).toBe(first.session_id);
    // The export is written again from the rows.
    await daemon.stop("SIGTERM");
    daemon = undefined;
    const exported = JSON.parse(
      await readFile(path.join(home.home, "dispatch", "state", "sessions.json"), "utf8"),
    ) as Record<string, { session_id: string; turns: number }>;
    expect(exported[JOHN]).toMatchObject({ session_id: first.session_id, turns: 2 });
  });
});
