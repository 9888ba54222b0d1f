/**
 * The lease keeper on a manual clock, over both ownership adapters (in memory, and PostgreSQL on
 * the test run's private server with a connection pool per node): it renews every third of the
 * lease so no other node can take a live node's chats, reports a lease lost when a paused node
 * wakes to find it taken over or when the database stays silent until it runs out, and hands
 * everything back at once on a graceful stop.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { LeaseKeeper } from "../../../src/cluster/lease-keeper.js";
import type { LostLease } from "../../../src/cluster/lease-policy.js";
import type { ChatOwnership, Lease, NodeReport } from "../../../src/store/chat-ownership.js";
import {
  createMemoryChatOwnership,
  createMemoryOwnershipRows,
} from "../../../src/store/memory-chat-ownership.js";
import { createPostgresChatOwnership } from "../../../src/store/postgres/postgres-chat-ownership.js";
import type { PostgresDatabase } from "../../../src/store/postgres/postgres-database.js";
import type { Clock } from "../../../src/utils/clock.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { asSessionName } from "../../../src/utils/ids.js";
import { ManualClock } from "../../support/manual-clock.js";
import { createMemoryLogger, type LogRecord } from "../../support/memory-logger.js";
import { useTestDatabase } from "../../support/postgres-test-database.js";

const LEASE_MS = 15_000;
const ALICE = asSessionName("alice");
const BOB = asSessionName("bob");

interface Storage {
  name: string;
  open(): Promise<void>;
  /** Two nodes' adapters on fresh, shared storage, on `clock`. */
  nodes(clock: Clock): Promise<{ a: ChatOwnership; b: ChatOwnership }>;
  close(): Promise<void>;
}

const memory: Storage = {
  name: "memory",
  open: () => Promise.resolve(),
  nodes(clock) {
    const rows = createMemoryOwnershipRows();
    return Promise.resolve({
      a: createMemoryChatOwnership({ rows, clock }),
      b: createMemoryChatOwnership({ rows, clock }),
    });
  },
  close: () => Promise.resolve(),
};

function postgres(): Storage {
  const database = useTestDatabase();
  let poolA: PostgresDatabase;
  let poolB: PostgresDatabase;
  return {
    name: "postgresql",
    async open() {
      poolA = await database.open();
      poolB = await database.open();
    },
    async nodes(clock) {
      await poolA.pool.query("TRUNCATE cluster_nodes, chat_leases");
      return {
        a: createPostgresChatOwnership({ database: poolA, clock }),
        b: createPostgresChatOwnership({ database: poolB, clock }),
      };
    },
    close: () => database.closeOpened(),
  };
}

/**
 * Node a's road to the database, which a test can hold (a stop-the-world pause: calls wait) or
 * break (the database does not answer).
 */
function road(ownership: ChatOwnership) {
  let release: (() => void) | undefined;
  let gate: Promise<void> | undefined;
  const state = { broken: false };
  const pass = async () => {
    await gate;
    if (state.broken) {
      throw new DispatchError("database_unreachable", "Could not write to the database");
    }
  };
  const wrapped: ChatOwnership = {
    ...ownership,
    heartbeat: async (report, ttlMs) => (await pass(), ownership.heartbeat(report, ttlMs)),
    renew: async (owner, held, leaseMs) => (await pass(), ownership.renew(owner, held, leaseMs)),
  };
  return {
    ownership: wrapped,
    state,
    pause() {
      gate = new Promise((resolve) => (release = resolve));
    },
    resume() {
      gate = undefined;
      release?.();
    },
  };
}

describe.each([memory, postgres()])("LeaseKeeper on $name", (storage) => {
  beforeAll(() => storage.open());
  afterAll(() => storage.close());

  let clock: ManualClock;
  let a: ChatOwnership;
  let b: ChatOwnership;
  let nodeA: ReturnType<typeof road>;
  let lost: LostLease[];
  let records: LogRecord[];
  let slotsFree: number;
  let keeper: LeaseKeeper;

  const report = (): Omit<NodeReport, "nodeId"> => ({
    address: "http://a:7878",
    startedAt: 0,
    liveSlotsFree: slotsFree,
    liveSlotsTotal: 8,
    channels: ["http"],
    state: "serving",
  });

  beforeEach(async () => {
    clock = new ManualClock();
    ({ a, b } = await storage.nodes(clock));
    nodeA = road(a);
    lost = [];
    records = [];
    slotsFree = 8;
    keeper = new LeaseKeeper({
      ownership: nodeA.ownership,
      clock,
      logger: createMemoryLogger(records),
      nodeId: "a",
      leaseMs: LEASE_MS,
      report,
      onLost: (loss) => lost.push(loss),
    });
  });

  async function hold(session = ALICE): Promise<Lease> {
    const result = await a.acquire(session, "a", LEASE_MS);
    if (!result.acquired) throw new Error("expected node a to acquire");
    keeper.hold(result.lease);
    return result.lease;
  }

  /** Moves the clock and waits for the round the timer started, if any. */
  async function advance(ms: number): Promise<void> {
    clock.advance(ms);
    await keeper.idle();
  }

  it("renews every third of the lease, so no other node takes a live node's chats", async () => {
    await keeper.start();
    await hold();
    for (let round = 1; round <= 10; round += 1) {
      slotsFree = 8 - round;
      await advance(LEASE_MS / 3);
      expect(await b.acquire(ALICE, "b", LEASE_MS)).toMatchObject({ acquired: false });
    }
    expect(await b.leaseOf(ALICE)).toMatchObject({ owner: "a", epoch: 1 });
    expect(keeper.leases()).toEqual([await b.leaseOf(ALICE)]);
    const [row] = await b.listNodes();
    expect(row).toMatchObject({
      nodeId: "a",
      liveSlotsFree: -2,
      heartbeatExpiresAt: clock.now() + LEASE_MS,
    });
    expect(lost).toEqual([]);
    await keeper.stop();
  });

  it("reports a lease lost, once, when a paused node wakes to find it taken over", async () => {
    await keeper.start();
    const alice = await hold(ALICE);
    await hold(BOB);
    nodeA.pause();
    clock.advance(LEASE_MS / 3); // a round starts, and hangs
    clock.advance(LEASE_MS); // both leases run out meanwhile
    const taken = await b.acquire(ALICE, "b", LEASE_MS);
    expect(taken).toMatchObject({ acquired: true, lease: { owner: "b", epoch: 2 } });
    nodeA.resume();
    await keeper.idle();
    expect(lost).toEqual([{ lease: alice, reason: "taken" }]);
    // Bob's lease ran out but no one took it: its epoch is still the newest, so it is kept.
    expect(keeper.leases()).toEqual([await b.leaseOf(BOB)]);
    expect(records.filter((record) => record.message === "lease-lose")).toEqual([
      {
        level: "warn",
        message: "lease-lose",
        fields: { nodeId: "a", sessionName: ALICE, epoch: 1, reason: "taken" },
      },
    ]);
    await advance(LEASE_MS / 3);
    expect(lost).toHaveLength(1);
    await keeper.stop();
  });

  it("reports leases lost as expired when the database stays silent until they run out", async () => {
    await keeper.start();
    const alice = await hold();
    nodeA.state.broken = true;
    await advance(LEASE_MS / 3);
    await advance(LEASE_MS / 3);
    expect(lost).toEqual([]);
    await advance(LEASE_MS / 3);
    expect(lost).toEqual([{ lease: alice, reason: "expired" }]);
    expect(keeper.leases()).toEqual([]);
    const messages = records.map((record) => record.message);
    expect(messages).toContain("lease-renew-fail");
    expect(messages).toContain("node-heartbeat-fail");
    await keeper.stop();
  });

  it("does not report a lease taken or forgotten while a renewal was under way", async () => {
    await keeper.start();
    await hold(ALICE);
    nodeA.pause();
    clock.advance(LEASE_MS / 3);
    keeper.forget(ALICE);
    const bob = await hold(BOB);
    nodeA.resume();
    await keeper.idle();
    expect(lost).toEqual([]);
    expect(keeper.leases()).toEqual([bob]);
    await keeper.stop();
  });

  it("hands every lease back at once on a graceful stop, and stops heartbeating", async () => {
    await keeper.start();
    await hold(ALICE);
    await hold(BOB);
    expect(await keeper.leave()).toEqual([ALICE, BOB]);
    expect(await b.acquire(ALICE, "b", LEASE_MS)).toMatchObject({
      acquired: true,
      lease: { owner: "b", epoch: 2 },
    });
    await advance(LEASE_MS * 2);
    expect((await b.listNodes()).map((node) => [node.nodeId, node.state])).toEqual([["a", "gone"]]);
    expect(keeper.leases()).toEqual([]);
  });

  it("refuses to start when the node's row cannot be written", async () => {
    nodeA.state.broken = true;
    await expect(keeper.start()).rejects.toMatchObject({ code: "database_unreachable" });
    await advance(LEASE_MS);
    expect(await b.listNodes()).toEqual([]);
  });
});
