/**
 * Chat ownership in PostgreSQL, on the test run's private server
 * (`test/support/postgres-server.ts`): the contract every adapter passes
 * (`chat-ownership-contract.ts`), each "node" with a connection pool of its own, and what only a
 * real transaction shows: a paused node's write after a take-over is refused and leaves nothing,
 * and a take-over waits for a fenced write under way.
 */
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ChatOwnership, Lease } from "../../../src/store/chat-ownership.js";
import type { PostgresDatabase } from "../../../src/store/postgres/postgres-database.js";
import {
  createPostgresChatOwnership,
  type PostgresTransaction,
} from "../../../src/store/postgres/postgres-chat-ownership.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { asSessionName } from "../../../src/utils/ids.js";
import { ManualClock } from "../../support/manual-clock.js";
import { useTestDatabase } from "../../support/postgres-test-database.js";
import { describeChatOwnershipContract } from "./chat-ownership-contract.js";

const postgres = useTestDatabase();

describeChatOwnershipContract("postgresql", {
  async create(clock) {
    const database = await postgres.open();
    await database.pool.query("TRUNCATE cluster_nodes, chat_leases");
    return createPostgresChatOwnership({ database, clock });
  },
  async another(clock) {
    return createPostgresChatOwnership({ database: await postgres.open(), clock });
  },
  async cleanup() {
    await postgres.closeOpened();
  },
});

const LEASE_MS = 15_000;
const ALICE = asSessionName("alice");

describe("createPostgresChatOwnership: fenced writes in real transactions", () => {
  let nodeA: PostgresDatabase;
  let nodeB: PostgresDatabase;
  let clock: ManualClock;
  let a: ChatOwnership<PostgresTransaction>;
  let b: ChatOwnership<PostgresTransaction>;

  beforeAll(async () => {
    nodeA = await postgres.open();
    nodeB = await postgres.open();
    await nodeA.pool.query(
      "CREATE TABLE replies (session_name TEXT NOT NULL, node TEXT NOT NULL, text TEXT NOT NULL)",
    );
  });
  beforeEach(async () => {
    await nodeA.pool.query("TRUNCATE cluster_nodes, chat_leases, replies");
    clock = new ManualClock();
    a = createPostgresChatOwnership({ database: nodeA, clock });
    b = createPostgresChatOwnership({ database: nodeB, clock });
  });

  const insertReply = (lease: Lease, text: string) => (transaction: PostgresTransaction) =>
    transaction.query("INSERT INTO replies (session_name, node, text) VALUES ($1, $2, $3)", [
      lease.sessionName,
      lease.owner,
      text,
    ]);

  async function replies(): Promise<{ node: string; text: string }[]> {
    const { rows } = await nodeB.pool.query<{ node: string; text: string }>(
      "SELECT node, text FROM replies ORDER BY text",
    );
    return rows;
  }

  async function acquired(ownership: ChatOwnership, owner: string): Promise<Lease> {
    const result = await ownership.acquire(ALICE, owner, LEASE_MS);
    if (!result.acquired) throw new Error(`expected ${owner} to acquire`);
    return result.lease;
  }

  it("refuses the write of a paused node after another took its lease over, and keeps the new owner's", async () => {
    const old = await acquired(a, "a");
    await a.fencedWrite(old, insertReply(old, "1 before the pause"));
    // Node a stops renewing (a stop-the-world pause, a partition): its lease runs out.
    clock.advance(LEASE_MS);
    const taken = await acquired(b, "b");
    await b.fencedWrite(taken, insertReply(taken, "2 by the new owner"));
    // Node a wakes up and writes as if nothing happened.
    const failure: unknown = await a
      .fencedWrite(old, insertReply(old, "3 after the pause"))
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(DispatchError);
    expect((failure as DispatchError).code).toBe("lease_lost");
    expect(await replies()).toEqual([
      { node: "a", text: "1 before the pause" },
      { node: "b", text: "2 by the new owner" },
    ]);
  });

  it("rolls a fenced write back when it fails part-way", async () => {
    const lease = await acquired(a, "a");
    const failure = await a
      .fencedWrite(lease, async (transaction) => {
        await insertReply(lease, "half")(transaction);
        throw new Error("the second half failed");
      })
      .catch((error: unknown) => error);
    expect(failure).toEqual(new Error("the second half failed"));
    expect(await replies()).toEqual([]);
  });

  it("makes a take-over wait for a fenced write under way; the old owner's next write is refused", async () => {
    const old = await acquired(a, "a");
    clock.advance(LEASE_MS);
    let finishWrite!: () => void;
    const writing = new Promise<void>((resolve) => (finishWrite = resolve));
    let started!: () => void;
    const writeStarted = new Promise<void>((resolve) => (started = resolve));
    const write = a.fencedWrite(old, async (transaction) => {
      await insertReply(old, "1 under way")(transaction);
      started();
      await writing;
    });
    await writeStarted;
    const takeOver = b.acquire(ALICE, "b", LEASE_MS);
    // The take-over is blocked on the lease row's lock, not refused and not through.
    await waitForLockWait(nodeA);
    finishWrite();
    await write;
    const result = await takeOver;
    expect(result).toMatchObject({ acquired: true, lease: { owner: "b", epoch: old.epoch + 1 } });
    const refused = await a
      .fencedWrite(old, insertReply(old, "2 too late"))
      .catch((error: unknown) => (error as DispatchError).code);
    expect(refused).toBe("lease_lost");
    expect(await replies()).toEqual([{ node: "a", text: "1 under way" }]);
  });
});

/** Resolves once some backend of the database waits for a lock. */
async function waitForLockWait(database: PostgresDatabase): Promise<void> {
  for (;;) {
    const { rows } = await database.pool.query<{ waiting: number }>(
      `SELECT count(*)::int AS waiting FROM pg_stat_activity
       WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    if (rows[0]!.waiting > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
