/**
 * The archive of forgotten sessions. Regression (issue 12): a forget dropped only the registry
 * entry; the folder, the CLI's data (its memory) and dispatch's transcript copy stayed where the
 * next chat of that name, or the same contact writing again, would find them.
 */
import {
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  readlink,
  rename,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../support/manual-clock.js";
import { asAgentSessionId, asChatId, asSessionName } from "../../../src/utils/ids.js";
import {
  FORGET_RECORD,
  openSessionArchive,
  type ForgetRecord,
  type SessionArchiveDeps,
} from "../../../src/daemon/session-archive.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { claudeProjectKey } from "../../../src/agent/claude-cli-layout.js";
import { createMemoryRegistry, type MemoryRegistry } from "../../../src/store/memory-registry.js";
import type { RegistryEntry } from "../../../src/store/registry.js";
import { openStateDatabase, type Database } from "../../../src/store/sqlite-database.js";
import { createSqliteTranscriptStore } from "../../../src/store/sqlite-transcript-store.js";
import type { SessionStoreEntry, TranscriptStore } from "../../../src/store/transcript-store.js";

const JOHN = asChatId("+15551234567");
const JANE = asChatId("+15559876543");
const JOHN_EMAIL = asChatId("john@example.com");
const NOW = Date.parse("2026-11-25T10:00:00Z");

function registered(name: string, sessionId: string, previous: string[] = []): RegistryEntry {
  return {
    session_name: asSessionName(name),
    contact_name: null,
    tier: "favorite",
    session_id: asAgentSessionId(sessionId),
    created_at: "2026-11-01T09:00:00.000Z",
    last_message_time: null,
    chat_kind: "individual",
    channel: "http",
    previous_session_ids: previous.map((id) => ({
      session_id: asAgentSessionId(id),
      replaced_at: "2026-11-02T09:00:00.000Z",
      reason: "restart",
    })),
    turns: 3,
    errors: 0,
    restarts: 0,
  };
}

const said = (uuid: string, text: string): SessionStoreEntry => ({
  type: "user",
  uuid,
  message: { role: "user", content: text },
});

let root: string;
let db: Database;
let transcripts: TranscriptStore;
let registry: MemoryRegistry;
let deps: SessionArchiveDeps;
let transcriptsDir: string;
let claudeDir: string;
let archiveDir: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "dispatch-archive-"));
  transcriptsDir = path.join(root, "transcripts");
  claudeDir = path.join(root, ".claude");
  archiveDir = path.join(root, "state", "forgotten");
  db = openStateDatabase({ path: path.join(root, "journal.db"), logger: createMemoryLogger() });
  const clock = new ManualClock(NOW);
  transcripts = createSqliteTranscriptStore({ db, clock });
  registry = createMemoryRegistry();
  deps = {
    archiveDir,
    transcriptsDir,
    claudeDir,
    registry,
    transcripts,
    clock,
    logger: createMemoryLogger(),
  };
});
afterEach(async () => {
  db.close();
  await rm(root, { recursive: true, force: true });
});

/** John's session as a forget finds it: files, the CLI's data with its memory, our copy. */
async function johnsSession() {
  registry.set(JOHN, registered("john-doe", "s-2", ["s-1"]));
  const folder = path.join(transcriptsDir, "john-doe");
  await mkdir(path.join(folder, "notes"), { recursive: true });
  await writeFile(path.join(folder, "notes", "word.txt"), "walnut");
  await symlink("notes/word.txt", path.join(folder, "link-to-word"));
  const key = claudeProjectKey(folder);
  const project = path.join(claudeDir, "projects", key);
  await mkdir(path.join(project, "memory"), { recursive: true });
  await writeFile(path.join(project, "memory", "MEMORY.md"), "The word is walnut\n");
  await writeFile(path.join(project, "s-2.jsonl"), '{"type":"user"}\n');
  const main = [said("u1", "remember the word walnut"), said("u2", "thanks")];
  await transcripts.append({ projectKey: key, sessionId: "s-2" }, main);
  const subagent = [said("u3", "a subagent's note")];
  await transcripts.append(
    { projectKey: key, sessionId: "s-2", subpath: "subagents/agent-1" },
    subagent,
  );
  // An earlier session of the chat, written while the transcripts folder was elsewhere.
  const oldKey = "-old-place-john-doe";
  const old = [said("u0", "an old conversation")];
  await transcripts.append({ projectKey: oldKey, sessionId: "s-1" }, old);
  // Someone else's, which must stay.
  registry.set(JANE, registered("jane-roe", "s-9"));
  const janeKey = claudeProjectKey(path.join(transcriptsDir, "jane-roe"));
  await transcripts.append({ projectKey: janeKey, sessionId: "s-9" }, [said("j1", "jane")]);
  return { folder, key, project, main, subagent, oldKey, old, janeKey };
}

async function recordIn(folder: string): Promise<ForgetRecord> {
  return JSON.parse(await readFile(path.join(folder, FORGET_RECORD), "utf8")) as ForgetRecord;
}

async function gone(file: string): Promise<boolean> {
  return lstat(file).then(
    () => false,
    () => true,
  );
}

async function lines(file: string): Promise<unknown[]> {
  const text = await readFile(file, "utf8");
  return text
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as unknown);
}

/** Checks that everything of John's session is in `archived` and nowhere else. */
async function expectArchived(archived: string, john: Awaited<ReturnType<typeof johnsSession>>) {
  expect(await gone(john.folder)).toBe(true);
  expect(await gone(john.project)).toBe(true);
  expect(await readFile(path.join(archived, "folder", "notes", "word.txt"), "utf8")).toBe("walnut");
  expect(await readlink(path.join(archived, "folder", "link-to-word"))).toBe("notes/word.txt");
  const memory = path.join(archived, "claude-projects", john.key, "memory", "MEMORY.md");
  expect(await readFile(memory, "utf8")).toBe("The word is walnut\n");
  const copy = path.join(archived, "transcript-copy");
  expect(await lines(path.join(copy, john.key, "s-2.jsonl"))).toEqual(john.main);
  expect(await lines(path.join(copy, john.key, "s-2", "subagents_agent-1.jsonl"))).toEqual(
    john.subagent,
  );
  expect(await lines(path.join(copy, john.oldKey, "s-1.jsonl"))).toEqual(john.old);
  expect(await transcripts.load({ projectKey: john.key, sessionId: "s-2" })).toBeNull();
  expect(await transcripts.listSubkeys({ projectKey: john.key, sessionId: "s-2" })).toEqual([]);
  expect(await transcripts.load({ projectKey: john.oldKey, sessionId: "s-1" })).toBeNull();
  expect(await transcripts.load({ projectKey: john.janeKey, sessionId: "s-9" })).toHaveLength(1);
  expect(registry.get(JOHN)).toBeUndefined();
  expect(registry.get(JANE)).toBeDefined();
  expect((await recordIn(archived)).done).toBe(true);
}

const crossDevice = (from: string, to: string): Promise<void> =>
  from.startsWith(archiveDir)
    ? rename(from, to)
    : Promise.reject(Object.assign(new Error("cross-device link"), { code: "EXDEV" }));

describe("session archive: forget", () => {
  it("moves the folder, the CLI's data and the transcript copy into a dated archive and drops the chat", async () => {
    const john = await johnsSession();
    const archive = await openSessionArchive(deps);
    const writesBefore = registry.writes;

    const archived = await archive.forget(JOHN, registry.get(JOHN)!);

    expect(archived).toBe(path.join(archiveDir, "2026-11-25-john-doe"));
    await expectArchived(archived, john);
    expect(registry.writes).toBeGreaterThan(writesBefore); // the removal was flushed
    const record = await recordIn(archived);
    expect(record).toMatchObject({
      chat_id: JOHN,
      session_name: "john-doe",
      forgotten_at: "2026-11-25T10:00:00.000Z",
      session_ids: ["s-2", "s-1"],
    });
    expect(archive.holds("john-doe")).toBe(true);
    expect(archive.holds("JOHN-DOE")).toBe(true);
    expect(archive.holds("jane-roe")).toBe(false);
    // The next start knows the name is held.
    expect((await openSessionArchive(deps)).holds("john-doe")).toBe(true);
  });

  it("copies across file systems, then removes the source, leaving no partial copy", async () => {
    const john = await johnsSession();
    const archive = await openSessionArchive({ ...deps, rename: crossDevice });
    const archived = await archive.forget(JOHN, registry.get(JOHN)!);
    await expectArchived(archived, john);
    expect((await readdir(archived)).sort()).toEqual([
      "claude-projects",
      "folder",
      FORGET_RECORD,
      "transcript-copy",
    ]);
  });

  it("gives a second forget of a name on the same day its own folder", async () => {
    registry.set(JOHN, registered("john-doe", "s-1"));
    const archive = await openSessionArchive(deps);
    const first = await archive.forget(JOHN, registry.get(JOHN)!);
    registry.set(JANE, registered("john-doe", "s-2")); // the archive was deleted by hand, say
    const second = await archive.forget(JANE, registry.get(JANE)!);
    expect(path.basename(first)).toBe("2026-11-25-john-doe");
    expect(path.basename(second)).toBe("2026-11-25-john-doe-2");
  });

  it("leaves a chat whose move failed forgotten, its name held, and says what to do", async () => {
    const john = await johnsSession();
    const denied = () =>
      Promise.reject(Object.assign(new Error("permission denied"), { code: "EACCES" }));
    const archive = await openSessionArchive({ ...deps, rename: denied });

    const failed = archive.forget(JOHN, registry.get(JOHN)!);
    await expect(failed).rejects.toMatchObject({
      code: "forget_incomplete",
      message: expect.stringMatching(/permission denied.*restart dispatch/s) as unknown,
    });
    expect(registry.get(JOHN)).toBeUndefined();
    expect(archive.holds("john-doe")).toBe(true);
    const folder = path.join(archiveDir, "2026-11-25-john-doe");
    expect((await recordIn(folder)).done).toBe(false);

    // The next start, with the cause fixed, finishes it.
    const restarted = await openSessionArchive(deps);
    expect(await restarted.finishPending()).toBe(1);
    await expectArchived(folder, john);
  });
});

describe("session archive: a forget cut short by a crash is finished at the next start", () => {
  /** What a kill leaves when it lands as the first move begins: the record, nothing moved. */
  async function recordOnly() {
    const john = await johnsSession();
    let moving = () => {};
    const firstMove = new Promise<void>((resolve) => (moving = resolve));
    const archive = await openSessionArchive({
      ...deps,
      rename: () => {
        moving();
        return new Promise<void>(() => undefined); // never ends, as a killed process
      },
    });
    void archive.forget(JOHN, registry.get(JOHN)!);
    await firstMove;
    return { john, folder: path.join(archiveDir, "2026-11-25-john-doe") };
  }

  it("after the record, with the registry entry still there", async () => {
    const { john, folder } = await recordOnly();
    registry.set(JOHN, registered("john-doe", "s-2", ["s-1"])); // as if the flush never came
    const restarted = await openSessionArchive(deps);
    expect(restarted.holds("john-doe")).toBe(true);
    expect(await restarted.finishPending()).toBe(1);
    await expectArchived(folder, john);
    expect(await restarted.finishPending()).toBe(0);
  });

  it("after the record, with a person's other handle still registered to the session", async () => {
    const { john, folder } = await recordOnly();
    // Both of John's handles, as if the removal of either had never been flushed.
    registry.set(JOHN, registered("john-doe", "s-2", ["s-1"]));
    registry.set(JOHN_EMAIL, registered("john-doe", "s-2"));
    const restarted = await openSessionArchive(deps);
    expect(await restarted.finishPending()).toBe(1);
    await expectArchived(folder, john);
    expect(registry.get(JOHN_EMAIL)).toBeUndefined();
  });

  // Found by test/e2e/forget-crash.test.ts: a start whose rename worked left the partial copy.
  it.each([
    ["copying again", crossDevice],
    ["renaming this time", rename],
  ])("in the middle of a copy across file systems, then %s", async (_how, renameFile) => {
    const { john, folder } = await recordOnly();
    const partial = path.join(folder, "folder.partial");
    await mkdir(partial, { recursive: true });
    await writeFile(path.join(partial, "half-copied"), "x");
    await expect(
      (await openSessionArchive({ ...deps, rename: renameFile })).finishPending(),
    ).resolves.toBe(1);
    await expectArchived(folder, john);
    expect(await gone(partial)).toBe(true);
    expect(await gone(path.join(folder, "folder", "half-copied"))).toBe(true);
  });

  it("after a copy's rename, in the middle of removing the source", async () => {
    const { john, folder } = await recordOnly();
    // The copy is complete in the archive; the source lost its notes but kept a link.
    await mkdir(path.join(folder, "folder", "notes"), { recursive: true });
    await writeFile(path.join(folder, "folder", "notes", "word.txt"), "walnut");
    await symlink("notes/word.txt", path.join(folder, "folder", "link-to-word"));
    await rm(path.join(john.folder, "notes"), { recursive: true });
    await expect((await openSessionArchive(deps)).finishPending()).resolves.toBe(1);
    await expectArchived(folder, john);
  });

  it("after a transcript copy was written and before it was deleted", async () => {
    const { john, folder } = await recordOnly();
    const file = path.join(folder, "transcript-copy", john.key, "s-2.jsonl");
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, `${JSON.stringify(john.main[0])}\n`); // half of it
    await expect((await openSessionArchive(deps)).finishPending()).resolves.toBe(1);
    await expectArchived(folder, john);
  });
});

describe("session archive: reading the archive", () => {
  it("removes a folder a kill left before its record, and skips an unreadable record, saying so", async () => {
    await mkdir(path.join(archiveDir, "2026-11-25-empty"), { recursive: true });
    await mkdir(path.join(archiveDir, "2026-11-25-bad"), { recursive: true });
    await writeFile(path.join(archiveDir, "2026-11-25-bad", FORGET_RECORD), "{ not json");
    const logger = createMemoryLogger();
    const archive = await openSessionArchive({ ...deps, logger });
    expect(await gone(path.join(archiveDir, "2026-11-25-empty"))).toBe(true);
    expect(await gone(path.join(archiveDir, "2026-11-25-bad", FORGET_RECORD))).toBe(false);
    expect(archive.holds("bad")).toBe(false);
    const warnings = logger.records.filter((record) => record.level === "warn");
    expect(warnings.map((record) => [record.message, record.fields.file])).toEqual([
      ["forget-record-unreadable", path.join(archiveDir, "2026-11-25-bad", FORGET_RECORD)],
    ]);
  });

  it("refuses a record that would move something out of the archive", async () => {
    const folder = path.join(archiveDir, "2026-11-25-evil");
    await mkdir(folder, { recursive: true });
    const record: ForgetRecord = {
      chat_id: JOHN,
      session_name: "evil",
      forgotten_at: "2026-11-25T10:00:00.000Z",
      session_ids: [],
      project_keys: [],
      moves: [{ from: path.join(root, "victim"), to: "../../outside" }],
      done: false,
    };
    await writeFile(path.join(folder, FORGET_RECORD), JSON.stringify(record));
    await mkdir(path.join(root, "victim"));
    const archive = await openSessionArchive(deps);
    expect(await archive.finishPending()).toBe(0);
    expect(await gone(path.join(root, "victim"))).toBe(false);
  });
});
