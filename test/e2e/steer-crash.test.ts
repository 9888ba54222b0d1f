/**
 * Regression (issue 12): answered once, also when the daemon dies while messages steer a turn.
 * One chat; a message whose turn takes 3 s; nine more sent over HTTP without `wait` while that
 * turn runs, each with its own `message_id`; `kill -9` of the daemon a second later; a start
 * again. The orphaned CLI folds the nine into one user entry of its transcript and goes on with
 * them. Before the fix, eight of the nine were handed over again at the replay: each stood in the
 * session's context twice and was answered twice. Real daemon processes, the real SDK and CLI,
 * the stand-in model.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createMemoryLogger } from "../support/memory-logger.js";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { openStateDatabase } from "../../src/store/sqlite-database.js";
import { createSqliteJournal } from "../../src/store/sqlite-journal.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { makeDaemonHome, type DaemonHome } from "../support/daemon-home.js";

const CHAT = "+15551234567";
const MARKERS = Array.from(
  { length: 10 },
  (_unused, index) => `s01-m${String(index + 1).padStart(4, "0")}`,
);
const [FIRST, ...STEERED] = MARKERS as [string, ...string[]];
const LAST = STEERED.at(-1)!;
const MARKERS_REPLY = /Markers said: (.*?)\. Markers answered: (.*?)\./;

let model: StandInModel;
let home: DaemonHome;
let env: NodeJS.ProcessEnv;
let daemon: DaemonProcess | undefined;

beforeEach(async () => {
  model = await startStandInModel();
  home = await makeDaemonHome({
    modelUrl: model.url,
    contacts: { contacts: [{ name: "Steering Sam", tier: "favorite", handles: [CHAT] }] },
  });
  env = home.env;
  daemon = await startDaemonProcess(env);
});

afterEach(async () => {
  if (daemon) await daemon.stop("SIGKILL");
  daemon = undefined;
  await model.close();
  await home.remove();
});

const textOf = (marker: string, lastDelayMs: number) =>
  marker === FIRST
    ? `${marker} [[delay 3000]]`
    : marker === LAST && lastDelayMs > 0
      ? `${marker} [[delay ${lastDelayMs}]]`
      : marker;

/**
 * The scenario up to the kill: the slow first turn, the nine steered messages (the last asks the
 * stand-in for `lastDelayMs` more), `kill -9` a second later.
 */
async function steerThenKill(lastDelayMs: number): Promise<void> {
  const post = (marker: string) =>
    daemon!.api("POST", "/v1/messages", {
      chat_id: CHAT,
      text: textOf(marker, lastDelayMs),
      message_id: marker,
    });
  expect((await post(FIRST)).status).toBe(202);
  await model.waitForRequests(1, (request) => lastUserText(request).includes(FIRST));
  for (const marker of STEERED) expect((await post(marker)).status).toBe(202);
  await sleep(1_000);
  expect(await daemon!.stop("SIGKILL")).toBeNull();
}

/** After the restart: each client repeats its message id and must get the reply to it. */
async function repliesAfterRestart(lastDelayMs: number): Promise<Map<string, string>> {
  const replies = new Map<string, string>();
  for (const marker of MARKERS) {
    const response = await daemon!.api("POST", "/v1/messages", {
      chat_id: CHAT,
      text: textOf(marker, lastDelayMs),
      message_id: marker,
      wait: true,
    });
    expect(response.status, JSON.stringify(response.json)).toBe(200);
    replies.set(marker, (response.json as { reply: string }).reply);
  }
  return replies;
}

/** The session's own context, read back through the stand-in (`[[markers]]`). */
async function contextMarkers(): Promise<{ said: string[]; answered: string[] }> {
  const response = await daemon!.api("POST", "/v1/messages", {
    chat_id: CHAT,
    text: "[[markers]]",
    wait: true,
  });
  const match = MARKERS_REPLY.exec((response.json as { reply: string }).reply);
  expect(match, JSON.stringify(response.json)).not.toBeNull();
  const list = (text: string) => (text === "(none)" ? [] : text.split(" "));
  return { said: list(match![1]!), answered: list(match![2]!) };
}

async function journalStatuses(): Promise<Map<string, string>> {
  const db = openStateDatabase({
    path: path.join(home.home, "dispatch", "state", "journal.db"),
    logger: createMemoryLogger(),
  });
  const journal = createSqliteJournal({ db });
  try {
    const statuses = new Map<string, string>();
    for (const marker of MARKERS) {
      statuses.set(marker, (await journal.findByExternalId("http", marker))?.status ?? "none");
    }
    return statuses;
  } finally {
    await journal.close();
  }
}

function lastUserText(request: { userTexts: string[] }): string {
  return request.userTexts.at(-1) ?? "";
}

/** Every line of the CLI's own transcripts (`~/.claude/projects/*\/*.jsonl`). */
async function cliTranscriptLines(): Promise<string[]> {
  const projects = path.join(home.home, ".claude", "projects");
  const lines: string[] = [];
  for (const project of await readdir(projects).catch(() => [] as string[])) {
    for (const file of await readdir(path.join(projects, project))) {
      if (!file.endsWith(".jsonl")) continue;
      lines.push(...(await readFile(path.join(projects, project, file), "utf8")).split("\n"));
    }
  }
  return lines;
}

async function expectEachAnsweredOnce(replies: Map<string, string>): Promise<void> {
  for (const marker of MARKERS) expect(replies.get(marker), marker).toContain(marker);
  const context = await contextMarkers();
  expect(context.said).toEqual(MARKERS);
  expect(context.answered).toEqual(MARKERS);
  await daemon!.stop("SIGTERM");
  daemon = undefined;
  expect([...(await journalStatuses()).values()]).toEqual(MARKERS.map(() => "answered"));
}

describe("killed while messages steer a turn", () => {
  it("answers each message once when the orphaned CLI answered them before the restart", async () => {
    await steerThenKill(0);
    // The orphan finishes the first turn, then answers the nine it folded together.
    for (;;) {
      const lines = await cliTranscriptLines();
      if (lines.some((line) => line.includes('"type":"assistant"') && line.includes(LAST))) break;
      await sleep(100);
    }
    const asked = model.mainRequests().length;

    daemon = await startDaemonProcess(env);
    const replies = await repliesAfterRestart(0);

    expect(model.mainRequests().length).toBe(asked); // every answer came from the transcript
    expect(replies.get(STEERED[0]!)).toBe(replies.get(LAST));
    await expectEachAnsweredOnce(replies);
  }, 120_000);

  it("asks once for the answer to messages the context holds unanswered, never giving them again", async () => {
    // The folded turn hangs at the stand-in: the restart ends the orphan in the middle of it.
    await steerThenKill(60_000);
    await model.waitForRequests(1, (request) => lastUserText(request).includes(LAST));
    const asked = model.mainRequests().length;

    daemon = await startDaemonProcess(env);
    const replies = await repliesAfterRestart(60_000);

    const after = model.mainRequests().slice(asked);
    // One turn answered the nine, and no request gave the model any of them twice.
    expect(after).toHaveLength(1);
    for (const marker of STEERED) {
      expect(after[0]!.userTexts.join("\n").split(marker)).toHaveLength(2);
    }
    expect(daemon.output()).toContain('"msg":"message-remind"');
    await expectEachAnsweredOnce(replies);
  }, 150_000);
});
