/**
 * The state database (`~/dispatch/state/journal.db`): one SQLite file that holds the message
 * journal (inbound, outbox, cursors), the mirror of the agent's transcripts and the session
 * registry. Opening it checks
 * it with `PRAGMA quick_check` and migrates its schema by `PRAGMA user_version`; a file that
 * fails the check is never replaced by an empty one. Every SQLite or file-system failure leaves
 * this module as a `DispatchError` that names the file, the cause and what to do.
 */
import { chmodSync, closeSync, mkdirSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { DispatchError, describeError } from "../utils/errors.js";
import type { Logger } from "../logging/logger.js";
import { errorCode } from "./durable-file.js";

export type Database = BetterSqlite3.Database;

export interface OpenStateDatabaseOptions {
  path: string;
  logger: Logger;
}

const BUSY_TIMEOUT_MS = 5000;

/**
 * Schema migrations: entry `n` moves `user_version` from `n` to `n + 1`. Append, never edit.
 * Times are integer epoch milliseconds.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE inbound (
    id            INTEGER PRIMARY KEY,
    uuid          TEXT NOT NULL UNIQUE,
    channel       TEXT NOT NULL,
    external_id   TEXT,
    chat_id       TEXT NOT NULL,
    sender        TEXT,
    group_name    TEXT,
    text          TEXT NOT NULL,
    received_at   INTEGER NOT NULL,
    status        TEXT NOT NULL
                  CHECK (status IN ('received', 'delivered', 'answered', 'rejected')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    error_code    TEXT,
    error_message TEXT,
    answered_by   INTEGER REFERENCES inbound (id),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
  );
  CREATE UNIQUE INDEX inbound_external_id ON inbound (channel, external_id)
    WHERE external_id IS NOT NULL;
  CREATE INDEX inbound_status ON inbound (status, id);
  CREATE INDEX inbound_answered_by ON inbound (answered_by);

  CREATE TABLE outbox (
    inbound_id INTEGER NOT NULL REFERENCES inbound (id),
    part       INTEGER NOT NULL CHECK (part >= 0),
    channel    TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    text       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'abandoned')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    error      TEXT,
    created_at INTEGER NOT NULL,
    sent_at    INTEGER,
    PRIMARY KEY (inbound_id, part)
  );
  CREATE INDEX outbox_status ON outbox (status);

  CREATE TABLE cursors (
    channel    TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  );

  CREATE TABLE transcript_keys (
    project_key TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    subpath     TEXT NOT NULL,
    mtime       INTEGER NOT NULL,
    next_seq    INTEGER NOT NULL,
    PRIMARY KEY (project_key, session_id, subpath)
  );
  CREATE TABLE transcript_entries (
    project_key TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    subpath     TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    uuid        TEXT,
    entry       TEXT NOT NULL,
    UNIQUE (project_key, session_id, subpath, seq),
    UNIQUE (project_key, session_id, subpath, uuid)
  );
  `,
  // 1 -> 2: what each turn cost (issue 7). No foreign key to inbound: turns outlive pruning.
  `
  CREATE TABLE turns (
    id             INTEGER PRIMARY KEY,
    chat_id        TEXT NOT NULL,
    session_id     TEXT NOT NULL,
    message_uuids  TEXT NOT NULL,
    ended_at       INTEGER NOT NULL,
    duration_ms    INTEGER NOT NULL,
    is_error       INTEGER NOT NULL CHECK (is_error IN (0, 1)),
    total_cost_usd REAL NOT NULL,
    total_tokens   INTEGER,
    cost_usd       REAL
  );
  CREATE INDEX turns_chat ON turns (chat_id, id);
  CREATE INDEX turns_session ON turns (session_id, id);
  `,
  // 2 -> 3: a resume check finds a session's projects by its id alone
  // (`transcripts.messageCount`); the primary key starts with project_key, so that was a scan.
  `
  CREATE INDEX IF NOT EXISTS transcript_keys_session ON transcript_keys (session_id);
  `,
  // 3 -> 4: the nonce of the envelope a message is given to the agent in, kept so that every
  // hand-over wraps it alike and a replay can find it in a transcript entry the CLI folded it into.
  `
  ALTER TABLE inbound ADD COLUMN envelope_nonce TEXT;
  `,
  // 4 -> 5: the dashboard's activity history (issue 16), so that a restart of the daemon does not
  // wipe the last day's messages, replies, errors and restarts (`sqlite-activity-store.ts`).
  `
  CREATE TABLE activity (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('message', 'reply', 'error', 'restart')),
    chat_id    TEXT,
    latency_ms INTEGER,
    code       TEXT,
    text       TEXT
  );
  CREATE INDEX activity_at ON activity (at);
  `,
  // 5 -> 6: outbox rows get an id in the order they were recorded, never reused (AUTOINCREMENT):
  // the event id of `GET /v1/events`, from which a client resumes (issue 15). The rows keep
  // their rowids as ids, so the order of the rows already there is kept.
  `
  CREATE TABLE outbox_ordered (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    inbound_id INTEGER NOT NULL REFERENCES inbound (id),
    part       INTEGER NOT NULL CHECK (part >= 0),
    channel    TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    text       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'abandoned')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    error      TEXT,
    created_at INTEGER NOT NULL,
    sent_at    INTEGER,
    UNIQUE (inbound_id, part)
  );
  INSERT INTO outbox_ordered (id, inbound_id, part, channel, chat_id, text, status, attempts,
    error, created_at, sent_at)
    SELECT rowid, inbound_id, part, channel, chat_id, text, status, attempts, error, created_at,
      sent_at
    FROM outbox ORDER BY rowid;
  DROP TABLE outbox;
  ALTER TABLE outbox_ordered RENAME TO outbox;
  CREATE INDEX outbox_status ON outbox (status);
  CREATE INDEX outbox_channel ON outbox (channel, id);
  `,
  // 6 -> 7: the session registry as rows, one per chat (issue 14), in place of rewriting all of
  // `sessions.json` for every change (`sqlite-registry-rows.ts`). `entry` is the chat's entry as
  // sessions.json holds it. A name is not unique per row: the chats of one person share their
  // session's (the registry checks that two sessions never share one).
  // `registry_import` records the one import of an existing sessions.json.
  `
  CREATE TABLE registry (
    chat_id      TEXT PRIMARY KEY,
    session_name TEXT NOT NULL,
    session_id   TEXT,
    entry        TEXT NOT NULL,
    updated_at   INTEGER NOT NULL
  );
  CREATE INDEX registry_session_name ON registry (session_name);
  CREATE TABLE registry_import (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    source      TEXT NOT NULL,
    entries     INTEGER NOT NULL,
    imported_at INTEGER NOT NULL
  );
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Opens (creating when missing) the state database at `path`: folder 0700, file 0600, WAL,
 * `synchronous=NORMAL` (see `sqlite-durability.ts` for the commits that are fsynced), foreign keys on,
 * checked and migrated. Throws `DispatchError` with code
 * `journal_corrupt`, `journal_unwritable`, `journal_full`, `journal_busy`, `journal_too_new` or
 * `journal_failed`.
 */
export function openStateDatabase(options: OpenStateDatabaseOptions): Database {
  const { path, logger } = options;
  prepareFile(path, logger);
  let db: Database;
  try {
    // The file exists now: SQLite must never create one of its own in place of a missing one.
    db = new BetterSqlite3(path, { fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
  } catch (error) {
    throw journalError(error, path, "open");
  }
  try {
    checkIntegrity(db, path);
    const mode = db.pragma("journal_mode = WAL", { simple: true });
    if (mode !== "wal") logger.warn("journal-wal-unavailable", { path, mode });
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    migrate(db, path, logger);
  } catch (error) {
    db.close();
    throw journalError(error, path, "open");
  }
  logger.info("journal-open", { path, schemaVersion: SCHEMA_VERSION });
  return db;
}

/** Creates the folder (0700) and an empty file (0600) when missing; tightens a looser file. */
function prepareFile(path: string, logger: Logger): void {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const existing = statIfExists(path);
    if (existing === undefined) {
      closeSync(openSync(path, "a", 0o600));
      logger.info("journal-create", { path });
    } else if (existing.isFile() && (existing.mode & 0o077) !== 0) {
      chmodSync(path, 0o600);
      logger.warn("journal-mode-tighten", { path, mode: (existing.mode & 0o777).toString(8) });
    }
  } catch (error) {
    throw journalError(error, path, "create");
  }
}

function statIfExists(path: string) {
  try {
    return statSync(path);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw error;
  }
}

/** A read-only check of every page; it never writes, so a bad file is left as it was. */
function checkIntegrity(db: Database, path: string): void {
  const problems = (db.pragma("quick_check(5)", { simple: false }) as { quick_check: string }[])
    .map((row) => row.quick_check)
    .filter((result) => result !== "ok");
  if (problems.length > 0) throw corruptError(path, problems.join("; "));
}

function migrate(db: Database, path: string, logger: Logger): void {
  const run = db.transaction(() => {
    const from = db.pragma("user_version", { simple: true }) as number;
    if (from > SCHEMA_VERSION) {
      throw new DispatchError(
        "journal_too_new",
        `The journal ${path} has schema version ${from}, newer than this dispatch knows ` +
          `(${SCHEMA_VERSION}): a newer dispatch wrote it. Run that version again, or move the ` +
          `file aside to start with an empty journal.`,
      );
    }
    for (let version = from; version < SCHEMA_VERSION; version += 1) {
      db.exec(MIGRATIONS[version]!);
    }
    if (from < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
    return from;
  });
  // IMMEDIATE: take the write lock before reading the version, so two openers cannot both migrate.
  const from = run.immediate();
  if (from < SCHEMA_VERSION) {
    logger.info("journal-migrate", { path, from, to: SCHEMA_VERSION });
  }
}

function corruptError(path: string, detail: string, cause?: unknown): DispatchError {
  return new DispatchError(
    "journal_corrupt",
    `The journal ${path} is damaged (${detail}); dispatch will not replace it with an empty one. ` +
      `Stop dispatch, move ${path} aside together with ${path}-wal and ${path}-shm if they ` +
      `exist, and start dispatch again: messages not yet answered in it are lost, and the ` +
      `registry is imported again from sessions.json, the copy dispatch keeps of it. Or ` +
      `restore a backup of the journal.`,
    { cause },
  );
}

const UNWRITABLE_CODES = new Set(["EACCES", "EPERM", "EROFS", "ENOTDIR", "EISDIR", "EEXIST"]);

/** Runs `work`, turning what it throws into the journal's errors (`journalError`). */
export function journalGuard(path: string): <T>(action: string, work: () => T) => T {
  return (action, work) => {
    try {
      return work();
    } catch (error) {
      throw journalError(error, path, action);
    }
  };
}

/**
 * Sorts a SQLite or file-system failure into the journal's error codes. `action` completes
 * "Could not ... the journal": "open", "write to", "read".
 */
export function journalError(error: unknown, path: string, action: string): DispatchError {
  if (error instanceof DispatchError) return error;
  const code = errorCode(error) ?? "";
  const cause = describeError(error);
  const failed = `Could not ${action} the journal ${path}`;
  if (code === "SQLITE_FULL" || code === "ENOSPC" || code === "SQLITE_IOERR_NOSPC") {
    return new DispatchError(
      "journal_full",
      `${failed}: the disk is full (${cause}). Free space on that disk; dispatch refuses new ` +
        `messages until it can record them.`,
      { cause: error },
    );
  }
  if (
    UNWRITABLE_CODES.has(code) ||
    code.startsWith("SQLITE_READONLY") ||
    code.startsWith("SQLITE_CANTOPEN") ||
    code === "SQLITE_PERM" ||
    code === "SQLITE_AUTH"
  ) {
    return new DispatchError(
      "journal_unwritable",
      `${failed}: ${cause} (${code}). Make sure the user running dispatch can read and write ` +
        `the file and its folder, on a file system that is not read-only, or set DISPATCH_HOME ` +
        `to a folder it can write.`,
      { cause: error },
    );
  }
  if (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB") {
    return corruptError(path, cause, error);
  }
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
    return new DispatchError(
      "journal_busy",
      `${failed}: another process holds it (${cause}). Is another dispatch running on the ` +
        `same home? Stop it (\`dispatch status\` shows it) or close the sqlite3 shell that has ` +
        `it open.`,
      { cause: error },
    );
  }
  return new DispatchError("journal_failed", `${failed}: ${cause}${code ? ` (${code})` : ""}.`, {
    cause: error,
  });
}
