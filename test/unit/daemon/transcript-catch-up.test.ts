/**
 * Regression (found by the crash loop, `test/soak/`): turns an orphaned CLI wrote to its own
 * transcript after the daemon was killed never reached dispatch's copy; once the copy held the
 * session, the SDK resumed from it and the conversation came back without them.
 */
import { mkdir, mkdtemp, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Clock } from "../../../src/utils/clock.js";
import { ManualClock } from "../../support/manual-clock.js";
import { asAgentSessionId, asChatId } from "../../../src/utils/ids.js";
import {
  catchUpAfterUncleanStop,
  catchUpTranscriptCopies,
  missingTail,
  parseTranscriptLines,
} from "../../../src/daemon/transcript-catch-up.js";
import { claudeProjectKey } from "../../../src/agent/claude-cli-layout.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { createMemoryRegistry } from "../../../src/store/memory-registry.js";
import type { RegistryEntry } from "../../../src/store/registry.js";
import { openStateDatabase, type Database } from "../../../src/store/sqlite-database.js";
import { createSqliteTranscriptStore } from "../../../src/store/sqlite-transcript-store.js";
import type { SessionStoreEntry, TranscriptStore } from "../../../src/store/transcript-store.js";
import { makeEntry } from "../../support/registry-entry.js";

const entry = (uuid: string | undefined, type = "user"): SessionStoreEntry =>
  uuid === undefined ? { type } : { type, uuid };

describe("missingTail", () => {
  const file = [entry("a"), entry(undefined, "queue-operation"), entry("b"), entry("c")];

  it("is the whole file for an empty copy, and what follows the copy's last entry otherwise", () => {
    expect(missingTail(file, [])).toEqual(file);
    expect(missingTail(file, [entry("a")])).toEqual(file.slice(1));
    expect(missingTail(file, [entry("a"), entry("b")])).toEqual([entry("c")]);
    expect(missingTail(file, file)).toEqual([]);
  });

  it("adds nothing when the copy's last entry is not in the file (the file is the stale one)", () => {
    expect(missingTail(file, [entry("a"), entry("z")])).toEqual([]);
  });

  it("leaves out the CLI's records of API requests, which it never mirrors", () => {
    const withRequests = [
      entry("a"),
      entry(undefined, "api-request"),
      entry(undefined, "api-request-blob"),
      entry("b"),
    ];
    expect(missingTail(withRequests, [entry("a")])).toEqual([entry("b")]);
  });
});

describe("parseTranscriptLines", () => {
  it("keeps entries and skips blank lines, odd values and a line a crash cut off", () => {
    const text = '{"type":"user","uuid":"a"}\n\n[1]\n{"no":"type"}\n{"type":"assistant","uu';
    expect(parseTranscriptLines(text)).toEqual([entry("a")]);
  });
});

/** A registry entry of a chat that has talked before, under `sessionId`. */
function registeredChat(name: string, contactName: string, sessionId: string): RegistryEntry {
  return makeEntry(name, {
    contact_name: contactName,
    session_id: asAgentSessionId(sessionId),
    created_at: "2026-11-25T09:00:00.000Z",
    channel: "http",
    turns: 1,
  });
}

/**
 * A registered session whose CLI file holds a turn more than the copy: the copy got the first
 * turn while the daemon lived; the file was written after it.
 */
async function sessionBehindItsFile(folder: string, transcripts: TranscriptStore, clock: Clock) {
  const transcriptsDir = join(folder, "transcripts");
  await mkdir(join(transcriptsDir, "john-doe"), { recursive: true });
  const projectKey = claudeProjectKey(join(transcriptsDir, "john-doe"));
  const claudeDir = join(folder, ".claude");
  const file = join(claudeDir, "projects", projectKey, "session-1.jsonl");
  await mkdir(join(claudeDir, "projects", projectKey), { recursive: true });
  const lines = [entry("u1"), entry("a1", "assistant"), entry("u2"), entry("a2", "assistant")];
  await writeFile(file, lines.map((line) => JSON.stringify(line)).join("\n") + "\n");
  await transcripts.append({ projectKey, sessionId: "session-1" }, lines.slice(0, 2));
  const later = new Date(clock.now() + 60_000);
  await utimes(file, later, later);
  const registry = createMemoryRegistry();
  registry.set(asChatId("+15551234567"), registeredChat("john-doe", "John Doe", "session-1"));
  const tmpDir = join(folder, "tmp");
  await mkdir(tmpDir);
  const key = { projectKey, sessionId: "session-1" };
  return { deps: { registry, transcripts, transcriptsDir, claudeDir, tmpDir }, key, lines };
}

describe("catchUpTranscriptCopies", () => {
  let folder: string;
  let db: Database;
  let transcripts: TranscriptStore;
  const clock = new ManualClock(Date.parse("2026-11-25T10:00:00Z"));

  beforeEach(async () => {
    folder = await mkdtemp(join(tmpdir(), "dispatch-catch-up-"));
    db = openStateDatabase({ path: join(folder, "journal.db"), logger: createMemoryLogger() });
    transcripts = createSqliteTranscriptStore({ db, clock });
  });

  afterEach(async () => {
    db.close();
    await rm(folder, { recursive: true, force: true });
  });

  it("copies the turns a CLI wrote after the crash, once, after what the copy had", async () => {
    const { deps: setup, key, lines } = await sessionBehindItsFile(folder, transcripts, clock);
    const deps = { ...setup, logger: createMemoryLogger() };

    expect(await catchUpTranscriptCopies(deps)).toEqual({ caughtUp: 1, failed: 0 });
    expect(await transcripts.load(key)).toEqual(lines);
    // Written now, the copy is newer than the file: nothing more to do.
    clock.advance(120_000);
    await transcripts.append(key, []);
    expect(await catchUpTranscriptCopies(deps)).toEqual({ caughtUp: 0, failed: 0 });
    expect(await transcripts.load(key)).toEqual(lines);
  });
});

describe("catchUpTranscriptCopies with a session resumed from the copy", () => {
  let folder: string;
  let db: Database;

  beforeEach(async () => {
    folder = await mkdtemp(join(tmpdir(), "dispatch-catch-up-"));
    db = openStateDatabase({ path: join(folder, "journal.db"), logger: createMemoryLogger() });
  });

  afterEach(async () => {
    db.close();
    await rm(folder, { recursive: true, force: true });
  });

  // SDK 0.3.337 keeps the CLI's config in `<root>/.claude`; older ones used the root itself.
  it.each([
    { layout: "<root>/.claude", configIn: ".claude" },
    { layout: "<root>", configIn: "" },
  ])(
    "takes the orphan's turn from the SDK's leftover resume folder ($layout), then removes the folder",
    async ({ configIn }) => {
      const clock = new ManualClock(Date.parse("2026-11-25T10:00:00Z"));
      const transcripts = createSqliteTranscriptStore({ db, clock });
      const transcriptsDir = join(folder, "transcripts");
      await mkdir(join(transcriptsDir, "jane-roe"), { recursive: true });
      const projectKey = claudeProjectKey(join(transcriptsDir, "jane-roe"));
      const first = [entry("u1"), entry("a1", "assistant")];
      await transcripts.append({ projectKey, sessionId: "session-2" }, first);
      // The SDK resumed from the copy in a folder of its own; the CLI answered there, orphaned.
      const tmpDir = join(folder, "tmp");
      const leftover = join(tmpDir, "claude-resume-1234");
      const other = join(tmpDir, "claude-resume-5678");
      await mkdir(join(leftover, configIn, "projects", projectKey), { recursive: true });
      await mkdir(join(other, configIn, "projects", "-somebody-else"), { recursive: true });
      const all = [...first, entry("u2"), entry("a2", "assistant")];
      const file = join(leftover, configIn, "projects", projectKey, "session-2.jsonl");
      await writeFile(file, all.map((line) => JSON.stringify(line)).join("\n"));
      const later = new Date(clock.now() + 60_000);
      await utimes(file, later, later);
      const registry = createMemoryRegistry();
      registry.set(asChatId("+15559876543"), registeredChat("jane-roe", "Jane Roe", "session-2"));

      const { caughtUp } = await catchUpTranscriptCopies({
        registry,
        transcripts,
        transcriptsDir,
        claudeDir: join(folder, ".claude"),
        tmpDir,
        logger: createMemoryLogger(),
      });

      expect(caughtUp).toBe(1);
      expect(await transcripts.load({ projectKey, sessionId: "session-2" })).toEqual(all);
      await expect(stat(leftover)).rejects.toThrow();
      expect((await stat(other)).isDirectory()).toBe(true);
    },
  );
});

describe("catchUpAfterUncleanStop", () => {
  let folder: string;
  let db: Database;
  let transcripts: TranscriptStore;
  const clock = new ManualClock(Date.parse("2026-11-25T10:00:00Z"));

  beforeEach(async () => {
    folder = await mkdtemp(join(tmpdir(), "dispatch-catch-up-"));
    db = openStateDatabase({ path: join(folder, "journal.db"), logger: createMemoryLogger() });
    transcripts = createSqliteTranscriptStore({ db, clock });
  });

  afterEach(async () => {
    db.close();
    await rm(folder, { recursive: true, force: true });
  });

  it("skips the catch-up after a clean stop, and logs it", async () => {
    const { deps, key, lines } = await sessionBehindItsFile(folder, transcripts, clock);
    const logger = createMemoryLogger();

    expect(await catchUpAfterUncleanStop({ ...deps, logger, uncleanStop: false })).toBeUndefined();
    // Not even looked at: after a clean stop the copy is complete (e2e transcript-catch-up).
    expect(await transcripts.load(key)).toEqual(lines.slice(0, 2));
    expect(logger.records.map((record) => [record.message, record.fields])).toEqual([
      ["transcript-catch-up-skip", { reason: "clean-stop" }],
    ]);
  });

  it("catches up after a stop that was not clean (a lock taken over), and logs what it did", async () => {
    const { deps, key, lines } = await sessionBehindItsFile(folder, transcripts, clock);
    const logger = createMemoryLogger();

    expect(await catchUpAfterUncleanStop({ ...deps, logger, uncleanStop: true })).toEqual({
      caughtUp: 1,
      failed: 0,
    });
    expect(await transcripts.load(key)).toEqual(lines);
    expect(logger.records.map((record) => record.message)).toEqual([
      "transcript-catch-up",
      "transcript-catch-up-end",
    ]);
    expect(logger.records[1]!.fields).toMatchObject({
      reason: "unclean-stop",
      caughtUp: 1,
      failed: 0,
    });
  });
});
