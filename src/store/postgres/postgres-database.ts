/**
 * A PostgreSQL database for dispatch's shared state (the transcript mirror, chat ownership, the
 * registry and the journal, `docs/cluster.md`): a connection pool, with the schema migrated on
 * open. Migrations are versioned in `dispatch_schema`; several daemons opening
 * one database at once migrate it once, one after the other, under a transaction-level advisory
 * lock (released at commit, so it also holds behind a transaction-mode pooler). Every failure
 * leaves this module as a `DispatchError` that names the server (never the password), the cause
 * and what to do.
 */
import pg from "pg";
import { DispatchError, describeError } from "../../utils/errors.js";
import type { Logger } from "../../logging/logger.js";
import { errorCode } from "../durable-file.js";

export interface PostgresDatabase {
  /** Every adapter queries through it; `close` ends it. */
  readonly pool: pg.Pool;
  /** `postgres://user@host:port/database`: the URL without its password, for messages. */
  readonly target: string;
  close(): Promise<void>;
}

export interface OpenPostgresDatabaseOptions {
  /** `postgres://user:password@host:5432/database` (any URL `pg` takes). */
  url: string;
  logger: Logger;
  /** Connections at most. Default 10. */
  maxConnections?: number;
  /** How long opening a connection may take. Default 10 s. */
  connectTimeoutMs?: number;
}

/**
 * Schema migrations: entry `n` moves the schema from version `n` to `n + 1`. Append, never edit.
 * Times are integer epoch milliseconds, as in the SQLite state database.
 */
const MIGRATIONS: readonly string[] = [
  // 0 -> 1: the transcript mirror (`postgres-transcript-store.ts`). An entry is kept as the text
  // of its JSON: `jsonb` refuses "\u0000" and even `json`'s operators refuse a lone surrogate
  // ("\ud800"), both of which a transcript can hold (a tool's output); its `type` gets a column
  // so counting messages needs no parsing.
  `
  CREATE TABLE transcript_keys (
    project_key TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    subpath     TEXT NOT NULL,
    mtime       BIGINT NOT NULL,
    next_seq    BIGINT NOT NULL,
    PRIMARY KEY (project_key, session_id, subpath)
  );
  CREATE INDEX transcript_keys_session ON transcript_keys (session_id);
  CREATE TABLE transcript_entries (
    project_key TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    subpath     TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    uuid        TEXT,
    type        TEXT,
    entry       TEXT NOT NULL,
    PRIMARY KEY (project_key, session_id, subpath, seq),
    UNIQUE (project_key, session_id, subpath, uuid)
  );
  `,
  // 1 -> 2: chat ownership in a cluster (`postgres-chat-ownership.ts`): a row per node, a lease
  // row per session name. A released lease keeps its row with no owner, so its epoch never goes
  // back. Times are epoch milliseconds from the nodes' clocks.
  `
  CREATE TABLE cluster_nodes (
    node_id              TEXT PRIMARY KEY,
    address              TEXT NOT NULL,
    started_at           BIGINT NOT NULL,
    heartbeat_expires_at BIGINT NOT NULL,
    live_slots_free      INTEGER NOT NULL,
    live_slots_total     INTEGER NOT NULL,
    channels             TEXT[] NOT NULL,
    state                TEXT NOT NULL CHECK (state IN ('serving', 'draining', 'gone'))
  );
  CREATE TABLE chat_leases (
    session_name TEXT PRIMARY KEY,
    owner_node   TEXT,
    epoch        BIGINT NOT NULL CHECK (epoch > 0),
    expires_at   BIGINT NOT NULL
  );
  CREATE INDEX chat_leases_owner ON chat_leases (owner_node) WHERE owner_node IS NOT NULL;
  CREATE INDEX chat_leases_expiry ON chat_leases (expires_at) WHERE owner_node IS NOT NULL;
  `,
  // 2 -> 3: the session registry, one row per chat (`postgres-registry-rows.ts`), the SQLite
  // adapter's table. A name is not unique per row: the chats of one person share their session's
  // (the registry checks that two sessions never share one). `registry_import` records the one
  // import of a node's sessions.json.
  `
  CREATE TABLE registry (
    chat_id      TEXT PRIMARY KEY,
    session_name TEXT NOT NULL,
    session_id   TEXT,
    entry        TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
  );
  CREATE INDEX registry_session_name ON registry (session_name);
  CREATE TABLE registry_import (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    source      TEXT NOT NULL,
    entries     INTEGER NOT NULL,
    imported_at BIGINT NOT NULL
  );
  `,
  // 3 -> 4: the journal (`postgres-journal.ts`), the SQLite journal's tables. Ids come from the
  // database (identity columns), so several nodes can write one journal; a message is unique by
  // (channel, external id), which `recordInbound` relies on for deduplication across nodes
  // (NULLs are distinct: messages without an external id are always new). Outbox rows get an id
  // in the order they were recorded, never reused: `GET /v1/events`' event id, read by channel
  // through `outbox_channel`; `outbox_id` is a hash index, so it finds one id and cannot serve a
  // walk by id across every channel. The open
  // messages have partial indexes of their own, one by chat: a dead node's chats are replayed one by one.
  `
  CREATE TABLE inbound (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid           TEXT NOT NULL UNIQUE,
    channel        TEXT NOT NULL,
    external_id    TEXT,
    chat_id        TEXT NOT NULL,
    sender         TEXT,
    group_name     TEXT,
    text           TEXT NOT NULL,
    received_at    BIGINT NOT NULL,
    status         TEXT NOT NULL
                   CHECK (status IN ('received', 'delivered', 'answered', 'rejected')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    error_code     TEXT,
    error_message  TEXT,
    answered_by    BIGINT REFERENCES inbound (id),
    envelope_nonce TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (channel, external_id)
  );
  CREATE INDEX inbound_open ON inbound (id) WHERE status IN ('received', 'delivered');
  CREATE INDEX inbound_open_chat ON inbound (chat_id, id)
    WHERE status IN ('received', 'delivered');
  CREATE INDEX inbound_status ON inbound (status, updated_at);
  CREATE INDEX inbound_answered_by ON inbound (answered_by);
  CREATE TABLE outbox (
    id         BIGINT GENERATED ALWAYS AS IDENTITY,
    inbound_id BIGINT NOT NULL REFERENCES inbound (id),
    part       INTEGER NOT NULL,
    channel    TEXT NOT NULL,
    chat_id    TEXT NOT NULL,
    text       TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'abandoned')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    error      TEXT,
    created_at BIGINT NOT NULL,
    sent_at    BIGINT,
    PRIMARY KEY (inbound_id, part)
  );
  CREATE INDEX outbox_unsent ON outbox (inbound_id, part) WHERE status IN ('pending', 'failed');
  CREATE INDEX outbox_status ON outbox (status);
  CREATE INDEX outbox_channel ON outbox (channel, id);
  CREATE INDEX outbox_id ON outbox USING hash (id);
  CREATE TABLE cursors (
    channel    TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
  );
  CREATE TABLE turns (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id        TEXT NOT NULL,
    session_id     TEXT NOT NULL,
    message_uuids  TEXT NOT NULL,
    ended_at       BIGINT NOT NULL,
    duration_ms    BIGINT NOT NULL,
    is_error       BOOLEAN NOT NULL,
    total_cost_usd DOUBLE PRECISION NOT NULL,
    total_tokens   BIGINT,
    cost_usd       DOUBLE PRECISION
  );
  CREATE INDEX turns_chat ON turns (chat_id, id);
  CREATE INDEX turns_session ON turns (session_id, id);
  `,
  // 4 -> 5: a cluster's nodes read the registry rows changed since their last look
  // (`RegistryRows.loadChangedSince`), every few seconds.
  `
  CREATE INDEX registry_updated ON registry (updated_at);
  `,
];

export const POSTGRES_SCHEMA_VERSION = MIGRATIONS.length;

/** The advisory lock migrations take: "disp" in ASCII. */
const MIGRATION_LOCK = 0x64697370;

/**
 * Connects to the database at `url` and migrates its schema; resolves once it is ready. Throws
 * `DispatchError` with code `database_invalid_url`, `database_unreachable`,
 * `database_auth_failed`, `database_missing`, `database_forbidden`, `database_busy`,
 * `database_full`, `database_too_new` or `database_failed`.
 */
export async function openPostgresDatabase(
  options: OpenPostgresDatabaseOptions,
): Promise<PostgresDatabase> {
  const { url, logger } = options;
  const target = describeTarget(url);
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    application_name: "dispatch",
  });
  // An idle connection the server dropped: the pool replaces it; a query on it would have failed.
  pool.on("error", (error) => {
    logger.warn("database-connection-lose", { target, cause: describeError(error) });
  });
  try {
    await migrate(pool, target, logger);
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw databaseError(error, target, "open");
  }
  logger.info("database-open", { target, schemaVersion: POSTGRES_SCHEMA_VERSION });
  return { pool, target, close: () => pool.end() };
}

/** One statement through the pool, atomic on its own; a failure names the server and `action`. */
export async function queryRows<Row extends object>(
  database: PostgresDatabase,
  action: string,
  sql: string,
  values: unknown[],
): Promise<Row[]> {
  try {
    return (await database.pool.query<Row>(sql, values)).rows;
  } catch (error) {
    throw databaseError(error, database.target, action);
  }
}

/**
 * Runs `work` in one transaction on one connection, rolled back when it throws; a connection the
 * rollback found broken is discarded. A failure names the server and `action`.
 */
export async function inTransaction<T>(
  database: PostgresDatabase,
  action: string,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await database.pool.connect();
  } catch (error) {
    throw databaseError(error, database.target, action);
  }
  let broken = false;
  try {
    await client.query("BEGIN");
    const result = await work(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {
      broken = true;
    });
    throw databaseError(error, database.target, action);
  } finally {
    client.release(broken);
  }
}

async function migrate(pool: pg.Pool, target: string, logger: Logger): Promise<void> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS dispatch_schema (
         version    INTEGER PRIMARY KEY,
         applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
       )`,
    );
    const { rows } = await client.query<{ version: number | null }>(
      "SELECT max(version) AS version FROM dispatch_schema",
    );
    const from = rows[0]?.version ?? 0;
    if (from > POSTGRES_SCHEMA_VERSION) {
      throw new DispatchError(
        "database_too_new",
        `The database ${target} has schema version ${from}, newer than this dispatch knows ` +
          `(${POSTGRES_SCHEMA_VERSION}): a newer dispatch wrote it. Run that version, or point ` +
          `dispatch at another database.`,
      );
    }
    for (let version = from; version < POSTGRES_SCHEMA_VERSION; version += 1) {
      await client.query(MIGRATIONS[version]!);
      await client.query("INSERT INTO dispatch_schema (version) VALUES ($1)", [version + 1]);
    }
    await client.query("COMMIT");
    if (from < POSTGRES_SCHEMA_VERSION) {
      logger.info("database-migrate", { target, from, to: POSTGRES_SCHEMA_VERSION });
    }
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {
      broken = true;
    });
    throw error;
  } finally {
    client.release(broken);
  }
}

/** The URL without its password; refuses what is not a PostgreSQL URL (without echoing it). */
export function describeTarget(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalidUrl("it is not a URL");
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw invalidUrl(`its scheme is \`${parsed.protocol}\``);
  }
  parsed.password = "";
  return parsed.toString();
}

function invalidUrl(why: string): DispatchError {
  return new DispatchError(
    "database_invalid_url",
    `Expected the database URL to look like postgres://user:password@host:5432/dispatch, but ` +
      `${why}.`,
  );
}

const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "EPIPE",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
]);

/**
 * Sorts a PostgreSQL, driver or network failure into the database's error codes. `action`
 * completes "Could not ... the database": "open", "write to", "read".
 */
export function databaseError(error: unknown, target: string, action: string): DispatchError {
  if (error instanceof DispatchError) return error;
  const code = errorCode(error) ?? "";
  const cause = describeError(error);
  const failed = `Could not ${action} the database ${target}`;
  const because = `${cause}${code ? ` (${code})` : ""}`;
  if (
    UNREACHABLE_CODES.has(code) ||
    code.startsWith("08") ||
    // The driver's own: no SQLSTATE, a connection that timed out or ended.
    (code === "" && /timeout|terminated|Connection ended/i.test(cause))
  ) {
    return new DispatchError(
      "database_unreachable",
      `${failed}: ${because}. Make sure PostgreSQL runs there and accepts connections from ` +
        `this machine, and that the URL names the right host and port.`,
      { cause: error },
    );
  }
  if (code === "28P01" || code === "28000") {
    return new DispatchError(
      "database_auth_failed",
      `${failed}: the server refused the URL's user or password (${because}). Fix the user and ` +
        `password in the URL, or the server's pg_hba.conf.`,
      { cause: error },
    );
  }
  if (code === "3D000") {
    return new DispatchError(
      "database_missing",
      `${failed}: it does not exist (${because}). Create it (\`createdb <name>\` on the ` +
        `server), or point the URL at one that exists.`,
      { cause: error },
    );
  }
  if (code === "42501") {
    return new DispatchError(
      "database_forbidden",
      `${failed}: the URL's user may not do that (${because}). Grant it the rights to create ` +
        `and change tables in that database, or make it the database's owner.`,
      { cause: error },
    );
  }
  if (code === "53300" || code === "55P03" || code === "40P01") {
    return new DispatchError(
      "database_busy",
      `${failed}: the server is busy (${because}). Raise its max_connections or lower the ` +
        `connections other clients hold.`,
      { cause: error },
    );
  }
  if (code === "53100" || code === "53200") {
    return new DispatchError(
      "database_full",
      `${failed}: the server is out of disk or memory (${because}). Free space on the ` +
        `database server.`,
      { cause: error },
    );
  }
  return new DispatchError("database_failed", `${failed}: ${because}.`, { cause: error });
}
