/**
 * The journal in PostgreSQL, on the test run's private server (`test/support/postgres-server.ts`):
 * the contract every journal adapter passes (`journal-contract.ts`), what several processes
 * writing one journal at once get, how it reads, and how it fails.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { InboundMessage } from "../../../src/channels/channel.js";
import type { Journal } from "../../../src/store/journal.js";
import {
  openPostgresDatabase,
  type PostgresDatabase,
} from "../../../src/store/postgres/postgres-database.js";
import { createPostgresJournal } from "../../../src/store/postgres/postgres-journal.js";
import { ManualClock } from "../../support/manual-clock.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { leadingColumns, planScans, recordStatements } from "../../support/postgres-plans.js";
import { useTestDatabase } from "../../support/postgres-test-database.js";
import { describeJournalContract, expectDispatchError } from "./journal-contract.js";

const postgres = useTestDatabase();
let current: PostgresDatabase;

const TABLES = "inbound, outbox, cursors, turns";

describeJournalContract("postgresql", {
  async create(clock) {
    current = await postgres.open();
    await current.pool.query(`DROP TRIGGER IF EXISTS fail_inbound ON inbound`);
    await current.pool.query(`DROP TRIGGER IF EXISTS fail_cursors ON cursors`);
    await current.pool.query(`TRUNCATE ${TABLES} RESTART IDENTITY`);
    return createPostgresJournal({ database: current, clock });
  },
  async cleanup() {
    await postgres.closeOpened();
  },
  async tableCount(table) {
    const { rows } = await current.pool.query<{ count: string }>(
      `SELECT count(*) AS count FROM ${table}`,
    );
    return Number(rows[0]!.count);
  },
  async externalIds() {
    const { rows } = await current.pool.query<{ external_id: string | null }>(
      `SELECT external_id FROM inbound ORDER BY id`,
    );
    return rows.map((row) => row.external_id);
  },
  async outboxPart(inboundId, part) {
    const { rows } = await current.pool.query<{
      attempts: number;
      sent_at: string | null;
      error: string | null;
    }>(`SELECT attempts, sent_at, error FROM outbox WHERE inbound_id = $1 AND part = $2`, [
      inboundId,
      part,
    ]);
    const row = rows[0]!;
    return { ...row, sent_at: row.sent_at === null ? null : Number(row.sent_at) };
  },
  async orphanedParts() {
    const { rows } = await current.pool.query<{ count: string }>(
      `SELECT count(*) AS count FROM outbox
       WHERE NOT EXISTS (SELECT 1 FROM inbound WHERE inbound.id = outbox.inbound_id)`,
    );
    return Number(rows[0]!.count);
  },
  async failWrites(table, message) {
    await current.pool.query(
      `CREATE OR REPLACE FUNCTION fail_${table}() RETURNS trigger LANGUAGE plpgsql AS
       $$ BEGIN RAISE EXCEPTION '${message}'; END $$`,
    );
    await current.pool.query(
      `CREATE TRIGGER fail_${table} BEFORE INSERT OR UPDATE ON ${table}
       FOR EACH ROW EXECUTE FUNCTION fail_${table}()`,
    );
  },
  failedCode: "database_failed",
});

describe("createPostgresJournal", () => {
  let database: PostgresDatabase;
  const clock = new ManualClock();
  let counter = 0;
  const message = (overrides: Partial<InboundMessage> = {}): InboundMessage => {
    counter += 1;
    return {
      channel: "http",
      chatId: "+15551234567",
      text: `hello ${counter}`,
      externalId: `pg-${counter}`,
      receivedAt: new Date(clock.now()),
      ...overrides,
    };
  };

  beforeAll(async () => {
    database = await postgres.open();
    await database.pool.query(`DROP TRIGGER IF EXISTS fail_inbound ON inbound`);
    await database.pool.query(`DROP TRIGGER IF EXISTS fail_cursors ON cursors`);
  });

  /** `count` journals, each on a pool of its own: as many processes. */
  async function processes(
    count: number,
  ): Promise<{ journals: Journal[]; close: () => Promise<void> }> {
    const databases = await Promise.all(
      Array.from({ length: count }, () =>
        openPostgresDatabase({ url: postgres.url, logger: createMemoryLogger() }),
      ),
    );
    return {
      journals: databases.map((each) => createPostgresJournal({ database: each, clock })),
      close: async () => {
        await Promise.all(databases.map((each) => each.close()));
      },
    };
  }

  it("records a message once when two processes record its external id at the same moment", async () => {
    const { journals, close } = await processes(2);
    try {
      for (let round = 0; round < 20; round += 1) {
        const same = message({ externalId: `race-${round}` });
        const results = await Promise.all(journals.map((journal) => journal.recordInbound(same)));
        // One row, one id, and exactly one of the two was told it recorded it first.
        expect(new Set(results.map((result) => result.id)).size).toBe(1);
        expect(results.filter((result) => !result.duplicate)).toHaveLength(1);
        const { rows } = await database.pool.query<{ count: string }>(
          `SELECT count(*) AS count FROM inbound WHERE channel = 'http' AND external_id = $1`,
          [`race-${round}`],
        );
        expect(Number(rows[0]!.count)).toBe(1);
      }
    } finally {
      await close();
    }
  });

  it("answers a message once when two processes answer it at the same moment", async () => {
    const { journals, close } = await processes(2);
    try {
      const { id } = await journals[0]!.recordInbound(message());
      const outcomes = await Promise.allSettled(
        journals.map((journal, index) =>
          journal.markAnswered([id], { channel: "http", chatId: "c", parts: [`reply ${index}`] }),
        ),
      );
      expect(outcomes.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(1);
      const refused = outcomes.find((outcome) => outcome.status === "rejected");
      expect((refused as PromiseRejectedResult).reason).toMatchObject({
        code: "journal_conflict",
      });
      const { rows } = await database.pool.query<{ count: string }>(
        `SELECT count(*) AS count FROM outbox WHERE inbound_id = $1`,
        [id],
      );
      expect(Number(rows[0]!.count)).toBe(1);
    } finally {
      await close();
    }
  });

  it("gives ids from the database, distinct across processes", async () => {
    const { journals, close } = await processes(3);
    try {
      const results = await Promise.all(
        journals.flatMap((journal) =>
          [1, 2, 3, 4].map(() => journal.recordInbound(message({ externalId: undefined }))),
        ),
      );
      expect(new Set(results.map((result) => result.id)).size).toBe(12);
    } finally {
      await close();
    }
  });

  it("reads and writes through indexes searched by their leading column", async () => {
    const watched = recordStatements(database);
    const statements = watched.statements;
    const pool = database.pool;
    const journal = createPostgresJournal({ database: watched.database, clock });
    const recorded = await journal.recordInbound(message({ externalId: "plan" }));
    await journal.markDelivered(recorded.id);
    await journal.recordEnvelopeNonce(recorded.id, "nonce");
    await journal.recordAttempt(recorded.id);
    await journal.pendingInbound();
    await journal.pendingInbound({ chatId: "+15551234567" });
    await journal.findByExternalId("http", "plan");
    await journal.cursor("imessage");
    await journal.setCursor("imessage", "1");
    await journal.markRejected(recorded.id, "x", "y");
    await journal.unsentOutbox();
    await journal.replyEventsAfter("http", 0, 200);
    await journal.replyEvent(1);
    await journal.lastReplyEventId("http");
    await journal.recentTurns("+15551234567", { limit: 5 });
    await journal.recentTurns("+15551234567", { sessionId: "s-1", limit: 5 });
    await journal.prune();
    // The transactions' statements run on a client of their own (recordInbound, markAnswered,
    // prune): their plans are checked below from the SQL they share with the module.
    expect(statements.length).toBeGreaterThanOrEqual(11);

    const leadingColumn = await leadingColumns(pool, ["inbound", "outbox", "cursors", "turns"]);
    // Partial indexes hold only open rows: reading one whole reads no closed message.
    const partial = new Set(["inbound_open", "outbox_unsent"]);
    const transactionStatements = [
      {
        sql: `INSERT INTO inbound (uuid, channel, external_id, chat_id, sender, group_name, text,
          received_at, status, attempts, created_at, updated_at)
          VALUES ('u', 'http', 'e', 'c', NULL, NULL, 't', 1, 'received', 0, 1, 1)
          ON CONFLICT (channel, external_id) DO NOTHING RETURNING id`,
        values: [],
      },
      { sql: `SELECT * FROM inbound WHERE channel = $1 AND external_id = $2`, values: ["h", "e"] },
      { sql: `SELECT text FROM outbox WHERE inbound_id = $1 ORDER BY part`, values: [1] },
      {
        sql: `SELECT id, status FROM inbound WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE`,
        values: [[1, 2]],
      },
    ];
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      // A journal that has run a while: many answered messages across chats with their replies,
      // a few open ones, and statistics that say so (all rolled back below).
      await client.query(
        `INSERT INTO inbound (uuid, channel, external_id, chat_id, text, received_at, status,
           created_at, updated_at)
         SELECT 'fill-' || n, 'http', 'fill-' || n, 'chat-' || (n % 500), 't', n,
           CASE WHEN n % 100 = 0 THEN 'received' ELSE 'answered' END, n, n
         FROM generate_series(1, 20000) AS n`,
      );
      await client.query(
        `INSERT INTO outbox (inbound_id, part, channel, chat_id, text, status, created_at)
         SELECT id, 0, CASE WHEN id % 4 = 0 THEN 'http' ELSE 'imessage' END, chat_id, 't',
           'sent', created_at FROM inbound
         WHERE status = 'answered' ON CONFLICT DO NOTHING`,
      );
      await client.query(
        `INSERT INTO turns (chat_id, session_id, message_uuids, ended_at, duration_ms, is_error,
           total_cost_usd) SELECT 'chat-' || (n % 500), 's-' || n, '[]', n, 1, false, 0
         FROM generate_series(1, 20000) AS n`,
      );
      await client.query("ANALYZE inbound, outbox, cursors, turns");
      await client.query("SET LOCAL enable_seqscan = off");
      for (const statement of [...statements, ...transactionStatements]) {
        const sql = statement.sql;
        const scans = await planScans(client, statement);
        expect(
          scans.map((scan) => scan.type),
          sql,
        ).not.toContain("Seq Scan");
        for (const scan of scans.filter((candidate) => candidate.index !== undefined)) {
          if (scan.condition === undefined && partial.has(scan.index!)) continue;
          const leading = leadingColumn.get(scan.index!);
          expect(scan.condition ?? "(no condition)", `${scan.index} in ${sql}`).toMatch(
            new RegExp(`\\(${leading} (=|<|>)`),
          );
        }
      }
    } finally {
      await client.query("ROLLBACK");
      client.release();
    }
  });

  it("rejects with a DispatchError naming the server without its password", async () => {
    const journal = createPostgresJournal({ database, clock });
    await database.pool.query("ALTER TABLE inbound RENAME TO inbound_away");
    try {
      const error = await expectDispatchError(
        () => journal.recordInbound(message()),
        "database_failed",
      );
      expect(error.message).toMatch(
        /Could not write to the database postgres:\/\/postgres@127\.0\.0\.1:\d+\/dispatch_test_\w+: relation "inbound" does not exist \(42P01\)/,
      );
    } finally {
      await database.pool.query("ALTER TABLE inbound_away RENAME TO inbound");
    }
  });

  it("fails with a database error once closed, naming no password", async () => {
    const gone = await openPostgresDatabase({ url: postgres.url, logger: createMemoryLogger() });
    const journal = createPostgresJournal({ database: gone, clock });
    await journal.close();
    await journal.close(); // twice is fine
    await expectDispatchError(() => journal.pendingInbound(), "database_failed");
  });
});
