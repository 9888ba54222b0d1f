/**
 * The archive of forgotten sessions, `~/dispatch/state/forgotten/<date>-<session-name>/`: where
 * `dispatch sessions forget` moves everything a chat's session left, so that nothing of it
 * reaches a later chat. Moved, not deleted: a forget is one click in the dashboard, and an
 * operator who forgot the wrong chat can still get its files back; deleting the archive folder
 * erases them for good. It holds:
 *
 * - `folder/`: the session's folder (`~/transcripts/<session-name>`), the agent's files;
 * - `claude-projects/<key>/`: the Claude CLI's data for that folder (its transcripts and its
 *   auto memory, which the CLI puts into every session started in that folder);
 * - `transcript-copy/<key>/<session id>.jsonl`: dispatch's own copy of those transcripts (the
 *   transcript mirror in the state database), one entry per line, then deleted from the database;
 * - `forget.json`: which chat, which name, what moved where, and whether the forget is done.
 *
 * A forget runs in this order, each step durable before the next:
 * 1. `forget.json` is written (not done). From here the name counts as in use (`holds`), and the
 *    forget will be finished whatever happens.
 * 2. The chat's registry entry is removed and the registry flushed: its next message starts a
 *    new conversation under a new name.
 * 3. The folder and the CLI's project folders are moved into the archive: a rename, or across
 *    file systems a copy to `<target>.partial`, a rename of that, then removal of the source.
 * 4. The transcript copy is written into the archive and deleted, one session at a time.
 * 5. `forget.json` says done.
 * A kill at any point leaves a record that is not done; `finishPending` at the next start runs
 * steps 2 to 5 again, each skipping what is already done. The name is never given to another
 * chat: the registry holds it until step 2, the record from step 1 on.
 */
import { cp, lstat, mkdir, readdir, rename, rm, rmdir } from "node:fs/promises";
import path from "node:path";
import type { Clock } from "../utils/clock.js";
import { DispatchError, describeError } from "../utils/errors.js";
import type { ChatId } from "../utils/ids.js";
import type { SessionArchive } from "../core/session-manager.js";
import type { Logger } from "../logging/logger.js";
import { claudeProjectFolders } from "../agent/claude-cli-layout.js";
import {
  errorCode,
  fsyncFolder,
  readFileIfExists,
  removeStaleTempFiles,
  writeFileDurable,
} from "../store/durable-file.js";
import type { Registry, RegistryEntry } from "../store/registry.js";
import type { SessionStoreEntry, TranscriptStore } from "../store/transcript-store.js";

export const FORGET_RECORD = "forget.json";

/** `forget.json`: what a forget does, kept so a crash can be finished from it. */
export interface ForgetRecord {
  chat_id: string;
  session_name: string;
  /** ISO date-time the forget began. */
  forgotten_at: string;
  /** The chat's session ids, current and previous: their transcript copies go too. */
  session_ids: string[];
  /** The CLI's project keys of the session's folder: every transcript copy under them goes. */
  project_keys: string[];
  /** Absolute sources, and targets relative to the archive folder. */
  moves: { from: string; to: string }[];
  done: boolean;
}

export interface SessionArchiveDeps {
  /** `~/dispatch/state/forgotten`. */
  archiveDir: string;
  transcriptsDir: string;
  /** The Claude CLI's config folder (`~/.claude`, or `CLAUDE_CONFIG_DIR`). */
  claudeDir: string;
  registry: Registry;
  /** dispatch's transcript copy; without one (an agent with no session store) nothing to move. */
  transcripts?: TranscriptStore;
  clock: Clock;
  logger: Logger;
  /** `fs.rename`; tests fail it with `EXDEV` to take the path across file systems. */
  rename?: (from: string, to: string) => Promise<void>;
}

export interface SessionArchiveFolder extends SessionArchive {
  /** Whether a forgotten session of this name is archived (case-insensitive). */
  holds(sessionName: string): boolean;
  /** Finishes the forgets a crash cut short; call before any session starts. Returns how many. */
  finishPending(): Promise<number>;
}

/** Reads the archive's records: which names it holds, which forgets are unfinished. */
export async function openSessionArchive(deps: SessionArchiveDeps): Promise<SessionArchiveFolder> {
  const held = new Set<string>();
  const pending = new Map<string, ForgetRecord>();
  for (const { folder, record } of await readRecords(deps)) {
    held.add(record.session_name.toLowerCase());
    if (!record.done) pending.set(folder, record);
  }

  const finish = async (folder: string, record: ForgetRecord): Promise<void> => {
    // Every chat that still holds the name: a person's other handles share the session, and a
    // kill before their removal was flushed leaves them registered. No other session can hold
    // the name, as a name is never handed out while its archive holds it.
    for (const chatId of deps.registry.chatsNamed(record.session_name)) {
      deps.registry.remove(chatId);
    }
    await deps.registry.flush();
    for (const move of record.moves) {
      await moveInto(move.from, path.join(folder, move.to), deps.rename);
    }
    if (deps.transcripts) await moveTranscriptCopies(deps.transcripts, record, folder);
    await writeRecord(folder, { ...record, done: true });
    pending.delete(folder);
  };

  return {
    holds: (sessionName) => held.has(sessionName.toLowerCase()),

    async forget(chatId, entry) {
      const record = recordOf(deps, chatId, entry);
      const folder = await newArchiveFolder(deps, entry.session_name);
      await writeRecord(folder, record);
      held.add(record.session_name.toLowerCase());
      pending.set(folder, record);
      try {
        await finish(folder, record);
      } catch (error) {
        throw new DispatchError(
          "forget_incomplete",
          `Chat ${chatId} was forgotten only in part: moving its session "${entry.session_name}" ` +
            `to ${folder} failed (${describeError(error)}). Its name is never given again; fix ` +
            "the cause and restart dispatch, which finishes the move at its start.",
          { cause: error },
        );
      }
      return folder;
    },

    async finishPending() {
      let finished = 0;
      for (const [folder, record] of [...pending]) {
        try {
          await finish(folder, record);
          finished += 1;
          deps.logger.info("session-forget-finish", { chatId: record.chat_id, archive: folder });
        } catch (error) {
          deps.logger.error("session-forget-unfinished", {
            chatId: record.chat_id,
            archive: folder,
            cause: describeError(error),
            fix: "fix the cause and restart dispatch; its name stays in use meanwhile",
          });
        }
      }
      return finished;
    },
  };
}

function recordOf(deps: SessionArchiveDeps, chatId: ChatId, entry: RegistryEntry): ForgetRecord {
  const name = entry.session_name;
  const projects = claudeProjectFolders(deps.claudeDir, deps.transcriptsDir, name);
  return {
    chat_id: chatId,
    session_name: name,
    forgotten_at: new Date(deps.clock.now()).toISOString(),
    session_ids: [
      ...(entry.session_id === null ? [] : [entry.session_id]),
      ...entry.previous_session_ids.map((previous) => previous.session_id),
    ],
    project_keys: projects.map((project) => project.key),
    moves: [
      { from: path.join(path.resolve(deps.transcriptsDir), name), to: "folder" },
      ...projects.map((project) => ({
        from: project.folder,
        to: path.join("claude-projects", project.key),
      })),
    ],
    done: false,
  };
}

/** `<archive>/<date>-<name>`, with `-2`, `-3`... when a forget of that name already has it. */
async function newArchiveFolder(deps: SessionArchiveDeps, sessionName: string): Promise<string> {
  const date = new Date(deps.clock.now()).toISOString().slice(0, 10);
  await mkdir(deps.archiveDir, { recursive: true, mode: 0o700 });
  for (let attempt = 1; ; attempt += 1) {
    const folder = path.join(
      deps.archiveDir,
      `${date}-${sessionName}${attempt === 1 ? "" : `-${attempt}`}`,
    );
    try {
      await mkdir(folder, { mode: 0o700 });
      await fsyncFolder(deps.archiveDir);
      return folder;
    } catch (error) {
      if (errorCode(error) !== "EEXIST") throw error;
    }
  }
}

async function writeRecord(folder: string, record: ForgetRecord): Promise<void> {
  await writeFileDurable(path.join(folder, FORGET_RECORD), `${JSON.stringify(record, null, 2)}\n`);
}

/**
 * Every archive folder's record. A folder a kill left before its record was written holds
 * nothing yet (nothing moves before the record exists) and is removed.
 */
async function readRecords(
  deps: SessionArchiveDeps,
): Promise<{ folder: string; record: ForgetRecord }[]> {
  const names = await readdir(deps.archiveDir).catch((error: unknown) => {
    if (errorCode(error) === "ENOENT") return [];
    throw error;
  });
  const records: { folder: string; record: ForgetRecord }[] = [];
  for (const name of names.sort()) {
    const folder = path.join(deps.archiveDir, name);
    const stats = await lstat(folder).catch(() => undefined);
    if (stats?.isDirectory() !== true) continue;
    const file = path.join(folder, FORGET_RECORD);
    await removeStaleTempFiles(file);
    const text = await readFileIfExists(file);
    if (text === undefined) {
      await rmdir(folder).catch(() => undefined); // not empty: someone else's, left alone
      continue;
    }
    const record = parseRecord(text);
    if (record === undefined) {
      deps.logger.warn("forget-record-unreadable", {
        file,
        fix: "restore it or remove the folder; until then dispatch ignores it",
      });
      continue;
    }
    records.push({ folder, record });
  }
  return records;
}

function parseRecord(text: string): ForgetRecord | undefined {
  try {
    const value = JSON.parse(text) as Partial<ForgetRecord>;
    const strings = (list: unknown) =>
      Array.isArray(list) && list.every((item) => typeof item === "string");
    const valid =
      typeof value.chat_id === "string" &&
      typeof value.session_name === "string" &&
      typeof value.done === "boolean" &&
      strings(value.session_ids) &&
      strings(value.project_keys) &&
      Array.isArray(value.moves) &&
      value.moves.every(
        (move) =>
          typeof move === "object" &&
          move !== null &&
          typeof move.from === "string" &&
          path.isAbsolute(move.from) &&
          typeof move.to === "string" &&
          !path.isAbsolute(move.to) &&
          !move.to.split(/[\\/]/).includes(".."),
      );
    return valid ? (value as ForgetRecord) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Moves `from` to `to` (which must not exist yet), once, whatever an earlier attempt got to: a
 * target already there means the move got as far as its last rename, and only the source's
 * removal may be left. A missing source means there is nothing (left) to move.
 */
export async function moveInto(
  from: string,
  to: string,
  renameFile: (from: string, to: string) => Promise<void> = rename,
): Promise<void> {
  await mkdir(path.dirname(to), { recursive: true, mode: 0o700 });
  if (await exists(to)) {
    await rm(from, { recursive: true, force: true });
    return;
  }
  // What a copy across file systems had done when a kill stopped it: the source is still whole.
  const partial = `${to}.partial`;
  await rm(partial, { recursive: true, force: true });
  try {
    await renameFile(from, to);
  } catch (error) {
    const code = errorCode(error);
    if (code === "ENOENT") return;
    if (code !== "EXDEV") throw error;
    // Another file system: copy beside the target, rename it into place, then remove the source.
    await cp(from, partial, {
      recursive: true,
      verbatimSymlinks: true,
      preserveTimestamps: true,
    });
    await rename(partial, to);
    await fsyncFolder(path.dirname(to));
    await rm(from, { recursive: true, force: true });
  }
  await fsyncFolder(path.dirname(to));
  await fsyncFolder(path.dirname(from)).catch(() => undefined);
}

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (error) {
    if (errorCode(error) === "ENOENT") return false;
    throw error;
  }
}

/**
 * Writes dispatch's copy of every transcript of the record's projects and sessions into the
 * archive and deletes it from the database, one session at a time: a session still in the
 * database has not been deleted, so writing its files again loses nothing.
 */
async function moveTranscriptCopies(
  transcripts: TranscriptStore,
  record: ForgetRecord,
  folder: string,
): Promise<void> {
  const sessions = new Map<string, Set<string>>();
  const add = (projectKey: string, sessionId: string) => {
    const ids = sessions.get(projectKey) ?? new Set<string>();
    ids.add(sessionId);
    sessions.set(projectKey, ids);
  };
  for (const projectKey of record.project_keys) {
    for (const session of await transcripts.listSessions(projectKey)) {
      add(projectKey, session.sessionId);
    }
  }
  for (const sessionId of record.session_ids) {
    for (const projectKey of await transcripts.projectsOf(sessionId)) add(projectKey, sessionId);
  }
  for (const [projectKey, ids] of sessions) {
    const projectFolder = path.join(folder, "transcript-copy", safeSegment(projectKey));
    for (const sessionId of ids) {
      const key = { projectKey, sessionId };
      const main = await transcripts.load(key);
      if (main !== null) {
        await writeEntries(path.join(projectFolder, `${safeSegment(sessionId)}.jsonl`), main);
      }
      for (const subpath of await transcripts.listSubkeys(key)) {
        const entries = (await transcripts.load({ ...key, subpath })) ?? [];
        const file = path.join(
          projectFolder,
          safeSegment(sessionId),
          `${safeSegment(subpath)}.jsonl`,
        );
        await writeEntries(file, entries);
      }
      await transcripts.delete(key); // the main transcript and its subagents' in one transaction
    }
  }
}

async function writeEntries(file: string, entries: readonly SessionStoreEntry[]): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFileDurable(file, entries.map((entry) => `${JSON.stringify(entry)}\n`).join(""));
}

/** One file name from a key part (`subagents/agent-1` -> `subagents_agent-1`). */
function safeSegment(value: string): string {
  const segment = value.replace(/[^A-Za-z0-9._-]/g, "_");
  return segment === "" || /^\.+$/.test(segment) ? "_" : segment;
}
