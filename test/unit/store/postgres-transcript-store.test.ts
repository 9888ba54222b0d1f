/**
 * The transcript mirror in PostgreSQL, on the test run's private server
 * (`test/support/postgres-server.ts`): the contract every adapter passes
 * (`transcript-store-contract.ts`), and how this one reads.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { PostgresDatabase } from "../../../src/store/postgres/postgres-database.js";
import { createPostgresTranscriptStore } from "../../../src/store/postgres/postgres-transcript-store.js";
import { leadingColumns, planScans, recordStatements } from "../../support/postgres-plans.js";
import { useTestDatabase } from "../../support/postgres-test-database.js";
import { describeTranscriptStoreContract } from "./transcript-store-contract.js";

const postgres = useTestDatabase();

describeTranscriptStoreContract("postgresql", {
  async create(clock) {
    const database = await postgres.open();
    await database.pool.query("TRUNCATE transcript_keys, transcript_entries");
    return createPostgresTranscriptStore({ database, clock });
  },
  async another(clock) {
    return createPostgresTranscriptStore({ database: await postgres.open(), clock });
  },
  async cleanup() {
    await postgres.closeOpened();
  },
});

describe("createPostgresTranscriptStore", () => {
  let database: PostgresDatabase;
  beforeAll(async () => {
    database = await postgres.open();
  });

  it("reads and writes through indexes, never a scan of every transcript", async () => {
    // The statements the store runs, as it runs them.
    const watched = recordStatements(database);
    const statements = watched.statements;
    const pool = database.pool;
    const store = createPostgresTranscriptStore({ database: watched.database });
    const key = { projectKey: "-p", sessionId: "s-1" };
    await store.append(key, [{ type: "user", uuid: "u1" }]);
    await store.load(key);
    await store.listSessions("-p");
    await store.listSubkeys(key);
    await store.recentEntries("s-1", 10);
    await store.messageCount("s-1");
    await store.projectsOf("s-1");
    await store.delete(key);
    expect(statements).toHaveLength(8);

    // Each index a plan uses must be searched by its leading column: a condition on a later
    // column alone still shows as an index scan, yet reads the whole index. Sequential scans are
    // priced out, so a plan that still has one had no index to use.
    const leadingColumn = await leadingColumns(pool, ["transcript_keys", "transcript_entries"]);
    expect(leadingColumn.size).toBe(4);
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SET LOCAL enable_seqscan = off");
      for (const statement of statements) {
        const sql = statement.sql;
        const scans = await planScans(client, statement);
        expect(
          scans.map((scan) => scan.type),
          sql,
        ).not.toContain("Seq Scan");
        for (const scan of scans.filter((candidate) => candidate.index !== undefined)) {
          const leading = leadingColumn.get(scan.index!);
          expect(scan.condition, `${scan.index} in ${sql}`).toMatch(new RegExp(`\\(${leading} = `));
        }
      }
    } finally {
      await client.query("ROLLBACK");
      client.release();
    }
  });

  it("rejects with a DispatchError naming the server, not the driver's error", async () => {
    const store = createPostgresTranscriptStore({ database });
    await database.pool.query("ALTER TABLE transcript_entries RENAME TO transcript_entries_away");
    try {
      const failure = store.load({ projectKey: "-p", sessionId: "s-1" });
      await expect(failure).rejects.toMatchObject({
        name: "DispatchError",
        code: "database_failed",
      });
      await expect(failure).rejects.toThrow(
        /Could not read a transcript from the database postgres:\/\/postgres@127\.0\.0\.1:\d+\/dispatch_test_\w+: relation "transcript_entries" does not exist \(42P01\)/,
      );
    } finally {
      await database.pool.query("ALTER TABLE transcript_entries_away RENAME TO transcript_entries");
    }
  });
});
