/**
 * Opening dispatch's PostgreSQL database on the test run's private server: the schema migrated
 * once however many daemons open it at once, a newer schema refused, and every way a connection
 * can fail told as what to do, without the password.
 */
import pg from "pg";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { DispatchError } from "../../../src/utils/errors.js";
import { createMemoryLogger, type LogRecord } from "../../support/memory-logger.js";
import {
  describeTarget,
  openPostgresDatabase,
  POSTGRES_SCHEMA_VERSION,
  type PostgresDatabase,
} from "../../../src/store/postgres/postgres-database.js";
import { freePort } from "../../support/daemon-process.js";
import { createTestDatabase, sharedPostgresServer } from "../../support/postgres-server.js";

const opened: PostgresDatabase[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((database) => database.close()));
});

async function open(url: string, records: LogRecord[] = []): Promise<PostgresDatabase> {
  const database = await openPostgresDatabase({ url, logger: createMemoryLogger(records) });
  opened.push(database);
  return database;
}

async function failureOf(url: string): Promise<DispatchError> {
  const failure: unknown = await openPostgresDatabase({ url, logger: createMemoryLogger() }).then(
    (database) => database.close(),
    (error: unknown) => error,
  );
  expect(failure).toBeInstanceOf(DispatchError);
  return failure as DispatchError;
}

let server: { url: string; port: number };
beforeAll(async () => {
  server = await sharedPostgresServer();
});

describe("openPostgresDatabase", () => {
  it("migrates a new database to the current schema, once", async () => {
    const url = await createTestDatabase();
    const first: LogRecord[] = [];
    const database = await open(url, first);
    const { rows } = await database.pool.query<{ version: number }>(
      "SELECT version FROM dispatch_schema ORDER BY version",
    );
    // Each version once, in order.
    expect(rows.map((row) => row.version)).toEqual(
      Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, index) => index + 1),
    );
    expect(first).toContainEqual(
      expect.objectContaining({
        message: "database-migrate",
        fields: { target: database.target, from: 0, to: POSTGRES_SCHEMA_VERSION },
      }),
    );
    const again: LogRecord[] = [];
    await open(url, again);
    expect(again.map((record) => record.message)).toEqual(["database-open"]);
  });

  it("migrates once when several daemons open a new database at the same time", async () => {
    const url = await createTestDatabase();
    const records: LogRecord[] = [];
    await Promise.all(Array.from({ length: 6 }, () => open(url, records)));
    const migrations = records.filter((record) => record.message === "database-migrate");
    expect(migrations).toHaveLength(1);
    const { rows } = await opened[0]!.pool.query<{ count: string }>(
      "SELECT count(*) FROM dispatch_schema",
    );
    expect(Number(rows[0]!.count)).toBe(POSTGRES_SCHEMA_VERSION);
  });

  it("refuses a database a newer dispatch migrated, and changes nothing", async () => {
    const url = await createTestDatabase();
    const database = await open(url);
    await database.pool.query("INSERT INTO dispatch_schema (version) VALUES (99)");
    const failure = await failureOf(url);
    expect(failure.code).toBe("database_too_new");
    expect(failure.message).toContain("schema version 99, newer than this dispatch knows");
    const { rows } = await database.pool.query<{ version: number }>(
      "SELECT version FROM dispatch_schema ORDER BY version",
    );
    expect(rows.map((row) => row.version)).toEqual([
      ...Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, index) => index + 1),
      99,
    ]);
  });

  it("says where it could not connect, and what to do, without the password", async () => {
    const port = await freePort();
    const failure = await failureOf(`postgres://dispatch:s3cret-pw@127.0.0.1:${port}/dispatch`);
    expect(failure.code).toBe("database_unreachable");
    expect(failure.message).toContain(`postgres://dispatch@127.0.0.1:${port}/dispatch`);
    expect(failure.message).toContain("Make sure PostgreSQL runs there");
    expect(failure.message).not.toContain("s3cret-pw");
  });

  it("tells a missing database and an unknown user apart", async () => {
    const missing = await failureOf(`${server.url}/no_such_database`);
    expect(missing.code).toBe("database_missing");
    expect(missing.message).toContain("createdb");
    const stranger = await failureOf(`postgres://nobody:pw@127.0.0.1:${server.port}/postgres`);
    expect(stranger.code).toBe("database_auth_failed");
    expect(stranger.message).not.toContain(":pw@");
  });

  it("refuses a URL that is not PostgreSQL's, without echoing it", () => {
    expect(() => describeTarget("mysql://root:hunter2@db/dispatch")).toThrow(
      expect.objectContaining({ code: "database_invalid_url" }) as Error,
    );
    expect(() => describeTarget("hunter2 is not a url")).toThrow(
      /Expected the database URL to look like postgres:\/\/user:password@host:5432\/dispatch, but it is not a URL\.$/,
    );
    expect(describeTarget("postgresql://me:pw@db.example:6543/dispatch?sslmode=require")).toBe(
      "postgresql://me@db.example:6543/dispatch?sslmode=require",
    );
  });

  it("outlives a connection the server drops, and uses a new one", async () => {
    const url = await createTestDatabase();
    const records: LogRecord[] = [];
    const database = await open(url, records);
    const { rows } = await database.pool.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    // The pool keeps that connection idle; the server ends it, as a restart or a proxy would.
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const lost = new Promise<void>((resolve) => database.pool.once("error", () => resolve()));
    await admin.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
    await admin.end();
    await lost;
    expect(records).toContainEqual(
      expect.objectContaining({ level: "warn", message: "database-connection-lose" }),
    );
    const after = await database.pool.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    expect(after.rows[0]!.pid).not.toBe(rows[0]!.pid);
  });
});
