/**
 * The transcript mirror (`../transcript-store.ts`) in PostgreSQL, the same tables as the SQLite
 * adapter's: one row per key in `transcript_keys` (its write time and next sequence number), one
 * per entry in `transcript_entries`. Every write is one statement, atomic on its own and one round
 * trip, with no transaction held open across round trips (so it works behind a transaction-mode
 * pooler):
 *
 * - an append first upserts its key, which takes the key's row lock until it commits: appends to
 *   one transcript from several processes queue on it and each gets its own range of sequence
 *   numbers; then it inserts the entries, skipping a `uuid` the transcript already holds (the
 *   SDK's contract says SHOULD, and its example adapter does not: a retried or replayed batch
 *   must not stand twice in a resumed context);
 * - appends and deletes of one session issued by this process run one after the other, in call
 *   order, even when the caller does not wait for one before the next (the SDK's contract:
 *   "within a single process, persist entries in append-call order"); a pool would otherwise
 *   let a later batch commit first.
 */
import { systemClock, type Clock } from "../../utils/clock.js";
import { entryUuid, MAIN_SUBPATH, serialiseEntry, storedSubpath } from "../transcript-rows.js";
import type { SessionKey, SessionStoreEntry, TranscriptStore } from "../transcript-store.js";
import { queryRows, type PostgresDatabase } from "./postgres-database.js";

export interface PostgresTranscriptStoreOptions {
  database: PostgresDatabase;
  clock?: Clock;
}

const APPEND = `
  WITH saved AS (
    INSERT INTO transcript_keys AS saved_key (project_key, session_id, subpath, mtime, next_seq)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (project_key, session_id, subpath) DO UPDATE
      SET mtime = GREATEST(excluded.mtime, saved_key.mtime + 1),
          next_seq = saved_key.next_seq + excluded.next_seq
    RETURNING next_seq - $5 AS first_seq
  )
  INSERT INTO transcript_entries (project_key, session_id, subpath, seq, uuid, type, entry)
  SELECT $1, $2, $3, saved.first_seq + batch.position - 1, batch.uuid, batch.type, batch.entry
  FROM saved, unnest($6::text[], $7::text[], $8::text[]) WITH ORDINALITY
    AS batch (uuid, type, entry, position)
  ON CONFLICT (project_key, session_id, subpath, uuid) DO NOTHING`;

const DELETE = `
  WITH entries AS (
    DELETE FROM transcript_entries
    WHERE project_key = $1 AND session_id = $2 AND ($4 OR subpath = $3)
  )
  DELETE FROM transcript_keys
  WHERE project_key = $1 AND session_id = $2 AND ($4 OR subpath = $3)`;

const RECENT = `
  SELECT entry FROM transcript_entries
  WHERE session_id = $1 AND subpath = '' AND project_key = (
    SELECT project_key FROM transcript_keys WHERE session_id = $1 AND subpath = ''
    ORDER BY mtime DESC LIMIT 1)
  ORDER BY seq DESC LIMIT $2`;

// Per project: a session has one unless its folder moved; the one holding the most counts.
const MESSAGES = `
  SELECT coalesce(max(messages), 0) AS most FROM (
    SELECT count(DISTINCT entries.uuid) AS messages
    FROM transcript_keys AS keys JOIN transcript_entries AS entries
      ON entries.project_key = keys.project_key AND entries.session_id = keys.session_id
        AND entries.subpath = keys.subpath
    WHERE keys.session_id = $1 AND keys.subpath = '' AND entries.type IN ('user', 'assistant')
    GROUP BY keys.project_key) AS per_project`;

export function createPostgresTranscriptStore(
  options: PostgresTranscriptStoreOptions,
): TranscriptStore {
  const clock = options.clock ?? systemClock;

  const query = <Row extends object>(action: string, sql: string, values: unknown[]) =>
    queryRows<Row>(options.database, action, sql, values);

  /** The tail of each session's writes, by `[projectKey, sessionId]`. */
  const writing = new Map<string, Promise<void>>();
  function inCallOrder(key: SessionKey, write: () => Promise<void>): Promise<void> {
    const session = JSON.stringify([key.projectKey, key.sessionId]);
    const result = (writing.get(session) ?? Promise.resolve()).then(write);
    const tail = result.catch(() => undefined);
    writing.set(session, tail);
    void tail.then(() => {
      if (writing.get(session) === tail) writing.delete(session);
    });
    return result;
  }

  const parse = (rows: { entry: string }[]) =>
    rows.map((row) => JSON.parse(row.entry) as SessionStoreEntry);

  return {
    async append(key, entries) {
      const subpath = storedSubpath(key);
      // No entries, no write: the key stays unwritten (the SDK's conformance suite).
      if (entries.length === 0) return;
      const batch = {
        uuids: [] as (string | null)[],
        types: [] as (string | null)[],
        texts: [] as string[],
      };
      const seen = new Set<string>();
      for (const entry of entries) {
        const uuid = entryUuid(entry);
        const text = serialiseEntry(entry);
        // A uuid twice in one batch: the first stands, as a later batch's replay would.
        if (uuid !== null && seen.has(uuid)) continue;
        if (uuid !== null) seen.add(uuid);
        batch.uuids.push(uuid);
        batch.types.push(typeof entry.type === "string" ? entry.type : null);
        batch.texts.push(text);
      }
      // Storage write time; the upsert keeps it increasing per key.
      const mtime = Math.floor(clock.now());
      const values = [key.projectKey, key.sessionId, subpath, mtime, batch.texts.length];
      await inCallOrder(key, async () => {
        await query("mirror a transcript to", APPEND, [
          ...values,
          batch.uuids,
          batch.types,
          batch.texts,
        ]);
      });
    },

    async load(key) {
      const rows = await query<{ entry: string }>(
        "read a transcript from",
        `SELECT entry FROM transcript_entries
         WHERE project_key = $1 AND session_id = $2 AND subpath = $3 ORDER BY seq`,
        [key.projectKey, key.sessionId, storedSubpath(key)],
      );
      // A key holds an entry from its first append on: no rows means never written.
      return rows.length === 0 ? null : parse(rows);
    },

    async listSessions(projectKey) {
      const rows = await query<{ session_id: string; mtime: string }>(
        "read a transcript from",
        `SELECT session_id, mtime FROM transcript_keys WHERE project_key = $1 AND subpath = $2`,
        [projectKey, MAIN_SUBPATH],
      );
      return rows.map((row) => ({ sessionId: row.session_id, mtime: Number(row.mtime) }));
    },

    async delete(key) {
      const subpath = storedSubpath(key);
      const all = key.subpath === undefined;
      await inCallOrder(key, async () => {
        await query("delete a transcript from", DELETE, [
          key.projectKey,
          key.sessionId,
          subpath,
          all,
        ]);
      });
    },

    async listSubkeys(key) {
      const rows = await query<{ subpath: string }>(
        "read a transcript from",
        `SELECT subpath FROM transcript_keys
         WHERE project_key = $1 AND session_id = $2 AND subpath <> $3 ORDER BY subpath`,
        [key.projectKey, key.sessionId, MAIN_SUBPATH],
      );
      return rows.map((row) => row.subpath);
    },

    async recentEntries(sessionId, limit) {
      const rows = await query<{ entry: string }>("read a transcript from", RECENT, [
        sessionId,
        limit,
      ]);
      return parse(rows.reverse());
    },

    async messageCount(sessionId) {
      const rows = await query<{ most: string }>("read a transcript from", MESSAGES, [sessionId]);
      return Number(rows[0]?.most ?? 0);
    },

    async projectsOf(sessionId) {
      const rows = await query<{ project_key: string }>(
        "read a transcript from",
        `SELECT project_key FROM transcript_keys WHERE session_id = $1 AND subpath = $2
         ORDER BY mtime DESC, project_key`,
        [sessionId, MAIN_SUBPATH],
      );
      return rows.map((row) => row.project_key);
    },
  };
}
