/**
 * A mirror of the Claude CLI's session transcripts in the state database, shaped as the Agent
 * SDK's `sessionStore` option, so a session resumes with its context even when `~/.claude` was
 * wiped or swept. The SDK is not imported here (one module owns it): the types below match the
 * SDK's `SessionKey`, `SessionStoreEntry` and `SessionStore` structurally.
 *
 * Semantics, from the SDK's contract: entries persist in call order; an entry with a `uuid` is
 * stored once per key (replays are ignored); entries without one are always appended; `load`
 * returns what was appended, in order, or null for a key never written; deleting a main
 * transcript deletes its subagent transcripts too.
 */
import { systemClock, type Clock } from "../core/clock.js";
import { DispatchError } from "../core/errors.js";
import { journalError, type Database } from "./sqlite-database.js";

export interface SessionKey {
  projectKey: string;
  sessionId: string;
  /** Undefined for the main transcript; `subagents/agent-<id>` and the like for the others. */
  subpath?: string;
}

export type SessionStoreEntry = {
  type: string;
  uuid?: string;
  timestamp?: string;
  [k: string]: unknown;
};

export interface TranscriptStore {
  append(key: SessionKey, entries: SessionStoreEntry[]): Promise<void>;
  load(key: SessionKey): Promise<SessionStoreEntry[] | null>;
  /** Main transcripts of a project, with their last write time (integer epoch ms). */
  listSessions(projectKey: string): Promise<{ sessionId: string; mtime: number }[]>;
  /** Deletes one transcript; for a main transcript, its subagent transcripts too. */
  delete(key: SessionKey): Promise<void>;
  listSubkeys(key: { projectKey: string; sessionId: string }): Promise<string[]>;
  /** Entries stored under the key: how a resume check compares our copy with the CLI's. */
  entryCount(key: SessionKey): number;
  /**
   * The last `limit` entries of a session's main transcript, oldest first, in the project it was
   * written under last (a session has one project unless its folder moved).
   */
  recentEntries(sessionId: string, limit: number): SessionStoreEntry[];
  /**
   * User and assistant messages (distinct by `uuid`) in a session's main transcript, in the
   * project that holds the most of them: what a resume of that session should bring back.
   */
  messageCount(sessionId: string): number;
  /** The projects holding a main transcript of the session (one, unless its folder moved). */
  projectsOf(sessionId: string): string[];
}

export interface TranscriptStoreOptions {
  db: Database;
  clock?: Clock;
}

/** The main transcript's subpath in the table (the SDK's `undefined`). */
const MAIN = "";

export function createTranscriptStore(options: TranscriptStoreOptions): TranscriptStore {
  const { db } = options;
  const clock = options.clock ?? systemClock;
  const path = db.name;

  const guard = <T>(action: string, work: () => T): T => {
    try {
      return work();
    } catch (error) {
      throw journalError(error, path, action);
    }
  };
  /** The SDK's methods are async: a failure becomes a rejection, never a synchronous throw. */
  const settle = <T>(action: string, work: () => T): Promise<T> => {
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(journalError(error, path, action));
    }
  };

  const statements = guard("prepare statements for", () => ({
    key: db.prepare<[string, string, string], { mtime: number; next_seq: number }>(
      `SELECT mtime, next_seq FROM transcript_keys
       WHERE project_key = ? AND session_id = ? AND subpath = ?`,
    ),
    saveKey: db.prepare(
      `INSERT INTO transcript_keys (project_key, session_id, subpath, mtime, next_seq)
       VALUES (@projectKey, @sessionId, @subpath, @mtime, @nextSeq)
       ON CONFLICT (project_key, session_id, subpath)
       DO UPDATE SET mtime = excluded.mtime, next_seq = excluded.next_seq`,
    ),
    insert: db.prepare(
      `INSERT INTO transcript_entries (project_key, session_id, subpath, seq, uuid, entry)
       VALUES (@projectKey, @sessionId, @subpath, @seq, @uuid, @entry)
       ON CONFLICT (project_key, session_id, subpath, uuid) DO NOTHING`,
    ),
    entries: db
      .prepare<[string, string, string], string>(
        `SELECT entry FROM transcript_entries
         WHERE project_key = ? AND session_id = ? AND subpath = ? ORDER BY seq`,
      )
      .pluck(),
    count: db
      .prepare<[string, string, string], number>(
        `SELECT count(*) FROM transcript_entries
         WHERE project_key = ? AND session_id = ? AND subpath = ?`,
      )
      .pluck(),
    sessions: db.prepare<[string], { sessionId: string; mtime: number }>(
      `SELECT session_id AS sessionId, mtime FROM transcript_keys
       WHERE project_key = ? AND subpath = ''`,
    ),
    // By project first: both go through an index (the session's, and the entries' key and seq),
    // where a lookup of entries by session id alone scanned every transcript.
    latestProject: db
      .prepare<[string], string>(
        `SELECT project_key FROM transcript_keys WHERE session_id = ? AND subpath = ''
         ORDER BY mtime DESC LIMIT 1`,
      )
      .pluck(),
    recent: db
      .prepare<[string, string, number], string>(
        `SELECT entry FROM transcript_entries
         WHERE project_key = ? AND session_id = ? AND subpath = ''
         ORDER BY seq DESC LIMIT ?`,
      )
      .pluck(),
    projectsOf: db
      .prepare<[string], string>(
        `SELECT project_key FROM transcript_keys WHERE session_id = ? AND subpath = ''`,
      )
      .pluck(),
    messages: db
      .prepare<[string, string], number>(
        `SELECT count(DISTINCT uuid) FROM transcript_entries
         WHERE project_key = ? AND session_id = ? AND subpath = ''
           AND json_extract(entry, '$.type') IN ('user', 'assistant')`,
      )
      .pluck(),
    subkeys: db
      .prepare<[string, string], string>(
        `SELECT subpath FROM transcript_keys
         WHERE project_key = ? AND session_id = ? AND subpath <> '' ORDER BY subpath`,
      )
      .pluck(),
    deleteEntries: db.prepare(
      `DELETE FROM transcript_entries
       WHERE project_key = @projectKey AND session_id = @sessionId
         AND (@all = 1 OR subpath = @subpath)`,
    ),
    deleteKeys: db.prepare(
      `DELETE FROM transcript_keys
       WHERE project_key = @projectKey AND session_id = @sessionId
         AND (@all = 1 OR subpath = @subpath)`,
    ),
  }));

  const append = db.transaction((key: SessionKey, entries: SessionStoreEntry[]) => {
    const row = { projectKey: key.projectKey, sessionId: key.sessionId, subpath: subpathOf(key) };
    const existing = statements.key.get(row.projectKey, row.sessionId, row.subpath);
    let seq = existing?.next_seq ?? 0;
    for (const entry of entries) {
      const uuid = typeof entry.uuid === "string" ? entry.uuid : null;
      const { changes } = statements.insert.run({ ...row, seq, uuid, entry: serialise(entry) });
      seq += changes;
    }
    // Storage write time, kept increasing per key so a later write never looks older.
    const mtime = Math.max(Math.floor(clock.now()), (existing?.mtime ?? 0) + 1);
    statements.saveKey.run({ ...row, mtime, nextSeq: seq });
  });

  const remove = db.transaction((key: SessionKey) => {
    const params = {
      projectKey: key.projectKey,
      sessionId: key.sessionId,
      subpath: subpathOf(key),
      all: key.subpath === undefined ? 1 : 0,
    };
    statements.deleteEntries.run(params);
    statements.deleteKeys.run(params);
  });

  return {
    append(key, entries) {
      return settle("mirror a transcript to", () => append(key, entries));
    },
    load(key) {
      return settle("read a transcript from", () => {
        const subpath = subpathOf(key);
        const rows = statements.entries.all(key.projectKey, key.sessionId, subpath);
        if (rows.length === 0) {
          // A key appended with no entries loads as []; one never written as null.
          return statements.key.get(key.projectKey, key.sessionId, subpath) === undefined
            ? null
            : [];
        }
        return rows.map((text) => JSON.parse(text) as SessionStoreEntry);
      });
    },
    listSessions(projectKey) {
      return settle("read a transcript from", () => statements.sessions.all(projectKey));
    },
    delete(key) {
      return settle("delete a transcript from", () => remove(key));
    },
    listSubkeys(key) {
      return settle("read a transcript from", () =>
        statements.subkeys.all(key.projectKey, key.sessionId),
      );
    },
    recentEntries(sessionId, limit) {
      return guard("read a transcript from", () => {
        const project = statements.latestProject.get(sessionId);
        if (project === undefined) return [];
        return statements.recent
          .all(project, sessionId, limit)
          .reverse()
          .map((text) => JSON.parse(text) as SessionStoreEntry);
      });
    },
    messageCount(sessionId) {
      return guard("read a transcript from", () => {
        // Per project through the primary key's index: transcript_keys is small, entries are not.
        let most = 0;
        for (const projectKey of statements.projectsOf.all(sessionId)) {
          most = Math.max(most, statements.messages.get(projectKey, sessionId) ?? 0);
        }
        return most;
      });
    },
    projectsOf(sessionId) {
      return guard("read a transcript from", () => statements.projectsOf.all(sessionId));
    },
    entryCount(key) {
      return guard("read a transcript from", () =>
        statements.count.get(key.projectKey, key.sessionId, subpathOf(key)),
      )!;
    },
  };
}

function subpathOf(key: SessionKey): string {
  if (key.subpath === undefined) return MAIN;
  if (key.subpath === MAIN) {
    throw new DispatchError(
      "transcript_invalid_key",
      `Expected \`subpath\` of session ${key.sessionId} to be a non-empty string or absent ` +
        `(absent means the main transcript), got "".`,
    );
  }
  return key.subpath;
}

function serialise(entry: SessionStoreEntry): string {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
    throw new DispatchError(
      "transcript_invalid_entry",
      `Expected a transcript entry to be a JSON object, got \`${String(entry)}\`.`,
    );
  }
  return JSON.stringify(entry);
}
