import { mkdir, readdir, readFile } from "node:fs/promises";
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCAL_ONLY_TYPES, parseTranscriptLines } from "../../src/daemon/transcript-catch-up.js";
import type { SessionStoreEntry } from "../../src/store/transcript-store.js";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { makeDaemonHome, type DaemonHome } from "../support/daemon-home.js";

/**
 * Why the start-up catch-up runs only after a run that did not end cleanly. A graceful stop
 * (SIGTERM, as `kill`, launchd and systemd send it) leaves dispatch's copy of every transcript
 * holding every entry of the CLI's own file: for sessions idle at the stop, for a turn the
 * shutdown grace let finish, and for a turn the grace cut off. So the next start skips the
 * catch-up. That holds too for sessions resumed from the copy, whose CLI writes into a temporary
 * folder the SDK makes for it (and removes at a graceful stop). "Every entry" leaves out the
 * CLI's records of its API requests, which it never passes to a session store at all.
 * After a `kill -9` the CLI may write on (an orphan finishing its turn) where only its own file
 * gets it: the next start catches the copy up before any session resumes from it.
 */
const JOHN = "+15551234567";
const JANE = "+15559876543";
const JOE = "+15555550123";
const GRACE_SECONDS = 3;

let model: StandInModel;
let home: DaemonHome;
let env: NodeJS.ProcessEnv;
let daemon: DaemonProcess | undefined;
/** The daemon's TMPDIR, where the SDK makes the folders it resumes sessions from. */
let tmp: string;

interface Reply {
  reply: string;
  session_id: string;
}

async function send(chatId: string, text: string): Promise<Reply> {
  const response = await daemon!.api("POST", "/v1/messages", { chat_id: chatId, text, wait: true });
  expect(response.status).toBe(200);
  return response.json as Reply;
}

/** Sends without waiting for the reply; resolves once the model has the message. */
async function sendAndLeave(chatId: string, text: string, word: string): Promise<void> {
  const accepted = await daemon!.api("POST", "/v1/messages", { chat_id: chatId, text });
  expect(accepted.status).toBe(202);
  await model.waitForRequests(1, (request) => request.userTexts.at(-1)?.includes(word) === true);
}

async function sessionIdOf(chatId: string): Promise<string> {
  const session = await daemon!.api("GET", `/v1/sessions/${encodeURIComponent(chatId)}`);
  return (session.json as { session_id: string }).session_id;
}

/** The CLI's own transcript files of a session: in ~/.claude and in resume folders left in TMPDIR. */
async function cliTranscriptsOf(sessionId: string): Promise<string[]> {
  const roots = [path.join(home.home, ".claude")];
  for (const name of await readdir(tmp)) {
    // SDK 0.3.337 keeps the resumed CLI's config in `<folder>/.claude`.
    if (name.startsWith("claude-resume-")) roots.push(path.join(tmp, name, ".claude"));
  }
  const texts: string[] = [];
  for (const root of roots) {
    const projects = path.join(root, "projects");
    for (const folder of await readdir(projects).catch(() => [] as string[])) {
      const text = await readFile(path.join(projects, folder, `${sessionId}.jsonl`), "utf8").catch(
        () => undefined,
      );
      if (text !== undefined) texts.push(text);
    }
  }
  if (texts.length === 0) throw new Error(`no CLI transcript for session ${sessionId}`);
  return texts;
}

/** The entries of a session's CLI transcript files, but the local-only ones. */
async function cliEntriesOf(sessionId: string): Promise<SessionStoreEntry[]> {
  return (await cliTranscriptsOf(sessionId))
    .flatMap((text) => parseTranscriptLines(text))
    .filter((entry) => !LOCAL_ONLY_TYPES.has(entry.type));
}

/** Of `entries`, those dispatch's copy of the session (in journal.db) lacks, as type and uuid. */
function missingFromCopy(sessionId: string, entries: readonly SessionStoreEntry[]): unknown[] {
  const db = new BetterSqlite3(path.join(home.home, "dispatch", "state", "journal.db"), {
    readonly: true,
  });
  try {
    const copy = db
      .prepare<[string], string>(
        `SELECT entry FROM transcript_entries WHERE session_id = ? AND subpath = ''`,
      )
      .pluck()
      .all(sessionId);
    const uuids = new Set(copy.map((text) => (JSON.parse(text) as { uuid?: string }).uuid));
    const texts = new Set(copy);
    return entries
      .filter((entry) =>
        entry.uuid === undefined ? !texts.has(JSON.stringify(entry)) : !uuids.has(entry.uuid),
      )
      .map((entry) => ({ type: entry.type, uuid: entry.uuid }));
  } finally {
    db.close();
  }
}

/** Polls the CLI's files: only the file system can tell when an orphaned CLI wrote to them. */
async function fileContains(sessionId: string, text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cliTranscriptsOf(sessionId)).some((file) => file.includes(text))) {
    if (Date.now() > deadline) throw new Error(`session ${sessionId}'s file never got "${text}"`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function resumeFoldersLeft(): Promise<string[]> {
  return (await readdir(tmp)).filter((name) => name.startsWith("claude-resume-"));
}

function logged(message: string): Record<string, unknown>[] {
  return daemon!
    .output()
    .split("\n")
    .flatMap((line) => {
      try {
        const record = JSON.parse(line) as Record<string, unknown>;
        return record.msg === message ? [record] : [];
      } catch {
        return [];
      }
    });
}

beforeAll(async () => {
  model = await startStandInModel();
  home = await makeDaemonHome({
    modelUrl: model.url,
    contacts: {
      contacts: [
        { name: "John Doe", tier: "favorite", handles: [JOHN] },
        { name: "Jane Roe", tier: "favorite", handles: [JANE] },
        { name: "Joe Bloggs", tier: "favorite", handles: [JOE] },
      ],
    },
    config: { shutdownGraceSeconds: GRACE_SECONDS },
  });
  tmp = path.join(home.home, "tmp");
  await mkdir(tmp);
  env = { ...home.env, TMPDIR: tmp };
  daemon = await startDaemonProcess(env);
});

afterAll(async () => {
  // Gracefully: a killed daemon's CLIs would write on into the folders being removed.
  if (daemon) await daemon.stop("SIGTERM");
  await model.close();
  await home.remove();
});

describe("dispatch's transcript copy", () => {
  it("holds every entry of each CLI transcript after a graceful stop, even of turns the stop cut short", async () => {
    const john = (await send(JOHN, "remember the word saffron")).session_id;
    await send(JOHN, "and what is the capital of Peru?");
    // Jane's turn ends within the shutdown grace; Joe's outlasts it and is cut off.
    await sendAndLeave(JANE, "[[delay 1500]] remember the word walnut", "walnut");
    await sendAndLeave(
      JOE,
      `[[delay ${(GRACE_SECONDS + 4) * 1000}]] remember the word basalt`,
      "basalt",
    );
    const jane = await sessionIdOf(JANE);
    const joe = await sessionIdOf(JOE);

    expect(await daemon!.stop("SIGTERM")).toBe(0);
    expect((await cliTranscriptsOf(jane)).join("")).toContain("I will remember walnut");
    expect((await cliTranscriptsOf(joe)).join("")).toContain("remember the word basalt");
    for (const sessionId of [john, jane, joe]) {
      const entries = await cliEntriesOf(sessionId);
      expect(entries.length).toBeGreaterThan(10);
      expect(missingFromCopy(sessionId, entries), `session ${sessionId}`).toEqual([]);
    }

    // So the next start skips the catch-up. Sessions now resume from the copy, the CLI writing
    // into a temporary folder the SDK makes for it; a graceful stop leaves none behind.
    daemon = await startDaemonProcess(env);
    expect(logged("transcript-catch-up-skip")).toHaveLength(1);
    expect(logged("transcript-catch-up-end")).toEqual([]);
    expect((await send(JANE, "what word did I ask you to remember?")).reply).toContain(
      "You asked me to remember walnut",
    );
    expect((await send(JOHN, "what word did I ask you to remember?")).reply).toContain(
      "You asked me to remember saffron",
    );
    await sendAndLeave(
      JOE,
      `[[delay ${(GRACE_SECONDS + 4) * 1000}]] remember the word flint`,
      "flint",
    );
    expect(await resumeFoldersLeft()).not.toEqual([]);
    expect(await daemon.stop("SIGTERM")).toBe(0);
    expect(await resumeFoldersLeft()).toEqual([]);
    for (const sessionId of [john, jane, joe]) {
      expect(missingFromCopy(sessionId, await cliEntriesOf(sessionId))).toEqual([]);
    }

    daemon = await startDaemonProcess(env);
    expect(logged("transcript-catch-up-skip")).toHaveLength(1);
  });

  it("catches up at the next start what a CLI wrote after the daemon was killed with kill -9", async () => {
    await sendAndLeave(JOHN, "[[delay 3000]] remember the word cedar", "cedar");
    const john = await sessionIdOf(JOHN);
    expect(await daemon!.stop("SIGKILL")).toBeNull();
    // The orphaned CLI finishes its turn, into its own file only: the copy lacks it.
    await fileContains(john, "I will remember cedar", 20_000);
    const entries = await cliEntriesOf(john);
    const missing = missingFromCopy(john, entries);
    expect(missing).toContainEqual({ type: "assistant", uuid: expect.any(String) as unknown });

    daemon = await startDaemonProcess(env);
    expect(logged("transcript-catch-up-skip")).toEqual([]);
    expect(logged("transcript-catch-up")).toContainEqual(expect.objectContaining({ chatId: JOHN }));
    expect(logged("transcript-catch-up-end")).toContainEqual(
      expect.objectContaining({ reason: "unclean-stop", failed: 0 }),
    );
    expect(missingFromCopy(john, entries)).toEqual([]);
    expect((await send(JOHN, "what word did I ask you to remember?")).reply).toContain(
      "You asked me to remember cedar",
    );
  });
});
