/**
 * Crash safety of forgetting: a forget killed with SIGKILL at any moment never leaves a half
 * state. Right after the kill, a chat whose registry entry is gone has its name held by the
 * archive (no other chat can get its folder); after the next start finished what was left, each
 * chat is either untouched or wholly in the archive: its files, the CLI's data and dispatch's
 * transcript copy, with nothing left behind and nothing lost.
 */
import { lstat, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { asAgentSessionId, asChatId, type ChatId } from "../../src/utils/ids.js";
import { FORGET_RECORD, openSessionArchive } from "../../src/daemon/session-archive.js";
import { openHomeRegistry } from "../support/home-registry.js";
import { createMemoryLogger } from "../support/memory-logger.js";
import { claudeProjectKey } from "../../src/agent/claude-cli-layout.js";
import type { RegistryEntry } from "../../src/store/registry.js";
import { openStateDatabase } from "../../src/store/sqlite-database.js";
import { createSqliteTranscriptStore } from "../../src/store/sqlite-transcript-store.js";
import type { SessionStoreEntry, TranscriptStore } from "../../src/store/transcript-store.js";
import { runAndKill } from "../support/run-and-kill.js";
import { makeEntry } from "../support/registry-entry.js";

const ROUNDS = 12;
const CHATS = 4;
const RUNNER = path.join(import.meta.dirname, "..", "support", "forget-runner.ts");

interface Chat {
  chatId: ChatId;
  name: string;
  sessionId: string;
  projectKey: string;
  folderFiles: Map<string, string>;
  projectFiles: Map<string, string>;
  entries: SessionStoreEntry[];
}

function entryOf(name: string, sessionId: string): RegistryEntry {
  return makeEntry(name, {
    contact_name: null,
    session_id: asAgentSessionId(sessionId),
    created_at: "2026-11-25T09:00:00.000Z",
    channel: "http",
    turns: 1,
  });
}

/** A home with `CHATS` registered sessions, each with files, CLI data and a transcript copy. */
async function prepareHome(home: string): Promise<Chat[]> {
  const stateDir = path.join(home, "dispatch", "state");
  await mkdir(stateDir, { recursive: true });
  const logger = createMemoryLogger();
  const db = openStateDatabase({ path: path.join(stateDir, "journal.db"), logger });
  const registry = await openHomeRegistry(home, logger, db);
  const transcripts = createSqliteTranscriptStore({ db });
  const chats: Chat[] = [];
  for (let index = 0; index < CHATS; index += 1) {
    const name = `contact-${index}`;
    const sessionId = `00000000-0000-4000-8000-00000000000${index}`;
    const chatId = asChatId(`+1555000000${index}`);
    registry.set(chatId, entryOf(name, sessionId));
    const cwd = path.join(home, "transcripts", name);
    const projectKey = claudeProjectKey(cwd);
    const folderFiles = new Map<string, string>();
    for (let file = 0; file < 40; file += 1) {
      folderFiles.set(path.join(`part-${file % 4}`, `note-${file}.txt`), `${name} note ${file}`);
    }
    const projectFiles = new Map([
      [path.join("memory", "MEMORY.md"), `${name}'s memory`],
      [`${sessionId}.jsonl`, `{"type":"user","text":"${name}"}\n`],
    ]);
    await writeFiles(cwd, folderFiles);
    await writeFiles(path.join(home, ".claude", "projects", projectKey), projectFiles);
    const entries = Array.from({ length: 20 }, (_, turn) => ({
      type: turn % 2 === 0 ? "user" : "assistant",
      uuid: `${index}-${turn}`,
      text: `${name} turn ${turn}`,
    }));
    await transcripts.append({ projectKey, sessionId }, entries);
    chats.push({ chatId, name, sessionId, projectKey, folderFiles, projectFiles, entries });
  }
  await registry.close();
  db.close();
  return chats;
}

async function writeFiles(folder: string, files: Map<string, string>): Promise<void> {
  for (const [file, text] of files) {
    await mkdir(path.dirname(path.join(folder, file)), { recursive: true });
    await writeFile(path.join(folder, file), text);
  }
}

/** Every file under `folder` by relative path, or undefined when there is no such folder. */
async function readFiles(folder: string): Promise<Map<string, string> | undefined> {
  const exists = await lstat(folder).then(
    () => true,
    () => false,
  );
  if (!exists) return undefined;
  const files = new Map<string, string>();
  for (const file of await readdir(folder, { recursive: true })) {
    const full = path.join(folder, file);
    if ((await lstat(full)).isFile()) files.set(file, await readFile(full, "utf8"));
  }
  return files;
}

/** Starts the runner, kills it `killAfterMs` after it is ready, and returns the chats it forgot. */
async function forgetAndKill(home: string, args: string[], killAfterMs: number): Promise<string[]> {
  const stdout = await runAndKill(RUNNER, [home, ...args], { readyMark: "ready\n", killAfterMs });
  return [...stdout.matchAll(/^forgot (\S+)$/gm)].map((match) => match[1]!);
}

async function archiveFolderOf(home: string, name: string): Promise<string | undefined> {
  const archiveDir = path.join(home, "dispatch", "state", "forgotten");
  const names = await readdir(archiveDir).catch(() => [] as string[]);
  const found = names.filter((folder) => new RegExp(`^\\d{4}-\\d{2}-\\d{2}-${name}$`).test(folder));
  expect(found.length, `archive folders of ${name}`).toBeLessThanOrEqual(1);
  return found[0] === undefined ? undefined : path.join(archiveDir, found[0]);
}

async function loadCopy(transcripts: TranscriptStore, chat: Chat) {
  return transcripts.load({ projectKey: chat.projectKey, sessionId: chat.sessionId });
}

describe("forget under SIGKILL", () => {
  const homes: string[] = [];
  afterEach(async () => {
    for (const home of homes.splice(0)) await rm(home, { recursive: true, force: true });
  });

  it(`never leaves a half-forgotten session (${ROUNDS} kills)`, async () => {
    const outcome = { killedMidForget: 0, forgotten: 0, untouched: 0 };
    for (let round = 0; round < ROUNDS; round += 1) {
      const home = await mkdtemp(path.join(tmpdir(), "dispatch-forget-crash-"));
      homes.push(home);
      const chats = await prepareHome(home);
      const acrossDevices = round % 2 === 1;
      const killAfterMs = Math.floor(Math.random() * 250);
      const args = [...(acrossDevices ? ["--across-devices"] : []), ...chats.map((c) => c.chatId)];
      const reported = await forgetAndKill(home, args, killAfterMs);
      const where = `round ${round} (kill after ${killAfterMs} ms, across devices: ${acrossDevices})`;

      // What the next start finds, before it finishes anything.
      const logger = createMemoryLogger();
      const stateDir = path.join(home, "dispatch", "state");
      const db = openStateDatabase({ path: path.join(stateDir, "journal.db"), logger });
      const registry = await openHomeRegistry(home, logger, db);
      const transcripts = createSqliteTranscriptStore({ db });
      const archive = await openSessionArchive({
        archiveDir: path.join(stateDir, "forgotten"),
        transcriptsDir: path.join(home, "transcripts"),
        claudeDir: path.join(home, ".claude"),
        registry,
        transcripts,
        clock: { now: () => Date.now(), every: () => () => {}, after: () => () => {} },
        logger,
      });
      for (const chat of chats) {
        // A chat the registry let go of has its name held: no new chat can get its folder.
        if (registry.get(chat.chatId) === undefined) {
          expect(archive.holds(chat.name), `${where}: ${chat.name} is held`).toBe(true);
        }
      }
      const pending = await archive.finishPending();
      if (pending > 0) outcome.killedMidForget += 1;
      expect(
        logger.records.filter((record) => record.level === "error"),
        where,
      ).toEqual([]);

      for (const chat of chats) {
        const folder = path.join(home, "transcripts", chat.name);
        const project = path.join(home, ".claude", "projects", chat.projectKey);
        const archived = await archiveFolderOf(home, chat.name);
        const what = `${where}: ${chat.name}`;
        if (registry.get(chat.chatId) !== undefined) {
          // Untouched: everything where it was, nothing in the archive.
          outcome.untouched += 1;
          expect(reported, what).not.toContain(chat.chatId);
          expect(archived, what).toBeUndefined();
          expect(await readFiles(folder), what).toEqual(chat.folderFiles);
          expect(await readFiles(project), what).toEqual(chat.projectFiles);
          expect(await loadCopy(transcripts, chat), what).toEqual(chat.entries);
          continue;
        }
        // Forgotten: everything in the archive, nothing left behind.
        outcome.forgotten += 1;
        expect(archived, what).toBeDefined();
        const record = JSON.parse(await readFile(path.join(archived!, FORGET_RECORD), "utf8")) as {
          done: boolean;
        };
        expect(record.done, what).toBe(true);
        expect(await readFiles(folder), what).toBeUndefined();
        expect(await readFiles(project), what).toBeUndefined();
        expect(await loadCopy(transcripts, chat), what).toBeNull();
        expect(await readFiles(path.join(archived!, "folder")), what).toEqual(chat.folderFiles);
        expect(
          await readFiles(path.join(archived!, "claude-projects", chat.projectKey)),
          what,
        ).toEqual(chat.projectFiles);
        const copy = await readFile(
          path.join(archived!, "transcript-copy", chat.projectKey, `${chat.sessionId}.jsonl`),
          "utf8",
        );
        expect(
          copy
            .trim()
            .split("\n")
            .map((line) => JSON.parse(line) as unknown),
          what,
        ).toEqual(chat.entries);
        expect(
          (await readdir(archived!)).filter((name) => name.endsWith(".partial")),
          what,
        ).toEqual([]);
      }
      await registry.close();
      db.close();
    }
    console.info(
      `forget crash: ${ROUNDS} kills, ${outcome.killedMidForget} in the middle of a forget; ` +
        `${outcome.forgotten} sessions forgotten, ${outcome.untouched} untouched`,
    );
  }, 240_000);
});
