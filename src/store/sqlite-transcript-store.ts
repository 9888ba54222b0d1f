/**
 * The transcript mirror (`transcript-store.ts`) in the SQLite state database: one row per key in
 * `transcript_keys` (its write time and next sequence number), one per entry in
 * `transcript_entries`. Synchronous inside; every method still answers with a promise, and a
 * failure becomes a rejection, never a synchronous throw.
 */
import { systemClock, type Clock } from "../utils/clock.js";
import { journalError, journalGuard, type Database } from "./sqlite-database.js";
import { entryUuid, serialiseEntry, storedSubpath } from "./transcript-rows.js";
import type { SessionKey, SessionStoreEntry, TranscriptStore } from "./transcript-store.js";

export interface SqliteTranscriptStoreOptions {
  db: Database;
  clock?: Clock;
}

export function createSqliteTranscriptStore(
  options: SqliteTranscriptStoreOptions,
): TranscriptStore {
  const { db } = options;
  const clock = options.clock ?? systemClock;
  const path = db.name;

  const guard = journalGuard(path);
  /** The port's methods are async: a failure becomes a rejection, never a synchronous throw. */
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
        `SELECT project_key FROM transcript_keys WHERE session_id = ? AND subpath = ''
         ORDER BY mtime DESC, project_key`,
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
    const row = {
      projectKey: key.projectKey,
      sessionId: key.sessionId,
      subpath: storedSubpath(key),
    };
    // No entries, no write: the key stays unwritten (the SDK's conformance suite).
    if (entries.length === 0) return;
    const existing = statements.key.get(row.projectKey, row.sessionId, row.subpath);
    let seq = existing?.next_seq ?? 0;
    for (const entry of entries) {
      const uuid = entryUuid(entry);
      const { changes } = statements.insert.run({
        ...row,
        seq,
        uuid,
        entry: serialiseEntry(entry),
      });
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
      subpath: storedSubpath(key),
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
        const rows = statements.entries.all(key.projectKey, key.sessionId, storedSubpath(key));
        // A key holds an entry from its first append on: no rows means never written.
        if (rows.length === 0) return null;
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
      return settle("read a transcript from", () => {
        const project = statements.latestProject.get(sessionId);
        if (project === undefined) return [];
        return statements.recent
          .all(project, sessionId, limit)
          .reverse()
          .map((text) => JSON.parse(text) as SessionStoreEntry);
      });
    },
    messageCount(sessionId) {
      return settle("read a transcript from", () => {
        // Per project through the primary key's index: transcript_keys is small, entries are not.
        let most = 0;
        for (const projectKey of statements.projectsOf.all(sessionId)) {
          most = Math.max(most, statements.messages.get(projectKey, sessionId) ?? 0);
        }
        return most;
      });
    },
    projectsOf(sessionId) {
      return settle("read a transcript from", () => statements.projectsOf.all(sessionId));
    },
  };
}
