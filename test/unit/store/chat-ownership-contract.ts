/**
 * Cases every adapter of chat ownership (`src/store/chat-ownership.ts`) must pass (unstorage's
 * `testDriver` pattern): each adapter's test file calls `describeChatOwnershipContract` with hooks
 * that give it an adapter on fresh storage, and another on the same storage to play a second
 * node. Both take their times from one manual clock, so expiry is driven, never waited for.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ChatOwnership, Lease, NodeReport } from "../../../src/store/chat-ownership.js";
import type { Clock } from "../../../src/utils/clock.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { asSessionName } from "../../../src/utils/ids.js";
import { ManualClock } from "../../support/manual-clock.js";

export interface ChatOwnershipContractHooks {
  /** An adapter on fresh, empty storage that takes its times from `clock`. */
  create(clock: Clock): Promise<ChatOwnership>;
  /** Another adapter on the storage of the last `create`, through a connection of its own. */
  another(clock: Clock): Promise<ChatOwnership>;
  /** Closes whatever `create` and `another` opened. */
  cleanup(): Promise<void>;
}

const LEASE_MS = 15_000;
const ALICE = asSessionName("alice");
const BOB = asSessionName("bob");

export function report(nodeId: string, overrides: Partial<NodeReport> = {}): NodeReport {
  return {
    nodeId,
    address: `http://${nodeId}:7878`,
    startedAt: Date.parse("2026-01-01T00:00:00.000Z"),
    liveSlotsFree: 4,
    liveSlotsTotal: 8,
    channels: ["http"],
    state: "serving",
    ...overrides,
  };
}

async function refusal(promise: Promise<unknown>): Promise<DispatchError> {
  const failure: unknown = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(failure).toBeInstanceOf(DispatchError);
  return failure as DispatchError;
}

export function describeChatOwnershipContract(
  adapter: string,
  hooks: ChatOwnershipContractHooks,
): void {
  describe(`chat ownership contract: ${adapter}`, () => {
    let clock: ManualClock;
    /** Node "a" and node "b", on one storage. */
    let a: ChatOwnership;
    let b: ChatOwnership;
    beforeEach(async () => {
      clock = new ManualClock();
      a = await hooks.create(clock);
      b = await hooks.another(clock);
    });
    afterEach(() => hooks.cleanup());

    async function held(ownership: ChatOwnership, owner: string, session = ALICE): Promise<Lease> {
      const result = await ownership.acquire(session, owner, LEASE_MS);
      if (!result.acquired) throw new Error(`expected ${owner} to acquire ${session}`);
      return result.lease;
    }

    describe("nodes", () => {
      it("writes a node's row at each heartbeat, which every node sees", async () => {
        const first = await a.heartbeat(report("a", { channels: ["http", "imessage"] }), 10_000);
        expect(first).toEqual({
          ...report("a", { channels: ["http", "imessage"] }),
          heartbeatExpiresAt: clock.now() + 10_000,
        });
        clock.advance(5_000);
        await a.heartbeat(report("a", { liveSlotsFree: 1, state: "draining" }), 10_000);
        await b.heartbeat(report("b"), 10_000);
        expect(await b.listNodes()).toEqual([
          {
            ...report("a", { liveSlotsFree: 1, state: "draining" }),
            heartbeatExpiresAt: clock.now() + 10_000,
          },
          { ...report("b"), heartbeatExpiresAt: clock.now() + 10_000 },
        ]);
      });
    });

    describe("leases", () => {
      it("gives a free lease epoch 1 until the lease time has passed", async () => {
        const lease = await held(a, "a");
        expect(lease).toEqual({
          sessionName: ALICE,
          owner: "a",
          epoch: 1,
          expiresAt: clock.now() + LEASE_MS,
        });
        expect(await b.leaseOf(ALICE)).toEqual(lease);
        expect(await b.leaseOf(BOB)).toBeUndefined();
      });

      it("refuses a lease another node holds, and says who holds it", async () => {
        const lease = await held(a, "a");
        clock.advance(LEASE_MS - 1);
        expect(await b.acquire(ALICE, "b", LEASE_MS)).toEqual({ acquired: false, heldBy: lease });
      });

      it("lets exactly one of two nodes racing for the same leases win each", async () => {
        const sessions = Array.from({ length: 20 }, (_, index) => asSessionName(`chat-${index}`));
        const results = await Promise.all(
          sessions.flatMap((session) => [
            a.acquire(session, "a", LEASE_MS),
            b.acquire(session, "b", LEASE_MS),
          ]),
        );
        for (const [index, session] of sessions.entries()) {
          const [fromA, fromB] = [results[2 * index]!, results[2 * index + 1]!];
          expect([fromA.acquired, fromB.acquired].filter(Boolean)).toHaveLength(1);
          const winner = fromA.acquired ? fromA.lease : fromB.acquired ? fromB.lease : undefined;
          const loser = fromA.acquired ? fromB : fromA;
          expect(loser).toEqual({ acquired: false, heldBy: winner });
          expect(await a.leaseOf(session)).toEqual(winner);
        }
      });

      it("lets another node take an expired lease over, with a higher epoch", async () => {
        const first = await held(a, "a");
        clock.advance(LEASE_MS);
        expect(await b.expiredLeases(10)).toEqual([first]);
        const taken = await held(b, "b");
        expect(taken).toEqual({
          sessionName: ALICE,
          owner: "b",
          epoch: 2,
          expiresAt: clock.now() + LEASE_MS,
        });
        expect(await a.expiredLeases(10)).toEqual([]);
        expect(await a.leasesOf("a")).toEqual([]);
        expect(await a.leasesOf("b")).toEqual([taken]);
      });

      it("lists expired leases oldest first, up to the limit", async () => {
        const bob = await held(a, "a", BOB);
        clock.advance(1_000);
        const alice = await held(a, "a", ALICE);
        clock.advance(LEASE_MS);
        expect(await b.expiredLeases(10)).toEqual([bob, alice]);
        expect(await b.expiredLeases(1)).toEqual([bob]);
      });

      it("gives a node its own lease back with a new epoch (a restart fences out its earlier run)", async () => {
        const before = await held(a, "a");
        const after = await held(b, "a");
        expect(after.epoch).toBe(before.epoch + 1);
        expect((await refusal(a.fencedWrite(before, () => Promise.resolve()))).code).toBe(
          "lease_lost",
        );
      });

      it("renews only the owner's leases that still have the epoch given", async () => {
        const alice = await held(a, "a", ALICE);
        const bob = await held(a, "a", BOB);
        clock.advance(LEASE_MS - 1);
        const renewed = await a.renew("a", [alice, bob], LEASE_MS);
        expect(renewed).toEqual([
          { ...alice, expiresAt: clock.now() + LEASE_MS },
          { ...bob, expiresAt: clock.now() + LEASE_MS },
        ]);
        // Past the first expiry, still held: no one can take it.
        clock.advance(2);
        expect((await b.acquire(ALICE, "b", LEASE_MS)).acquired).toBe(false);
        // Another node cannot renew them, nor can an epoch that is not the lease's.
        expect(await b.renew("b", [{ ...alice, owner: "b" }], LEASE_MS)).toEqual([]);
        expect(await a.renew("a", [{ ...alice, epoch: alice.epoch + 1 }], LEASE_MS)).toEqual([]);
        expect(await b.leaseOf(ALICE)).toEqual(renewed[0]);
      });

      it("refuses to renew a lease taken over, and renews the rest", async () => {
        const alice = await held(a, "a", ALICE);
        clock.advance(LEASE_MS);
        const bob = await held(a, "a", BOB);
        await held(b, "b", ALICE);
        expect(await a.renew("a", [alice, bob], LEASE_MS)).toEqual([
          { ...bob, expiresAt: clock.now() + LEASE_MS },
        ]);
      });

      it("renews an expired lease no one has taken: its epoch is still the newest", async () => {
        const alice = await held(a, "a");
        clock.advance(LEASE_MS * 2);
        expect(await a.renew("a", [alice], LEASE_MS)).toEqual([
          { ...alice, expiresAt: clock.now() + LEASE_MS },
        ]);
      });

      it("hands a released lease back at once; the next holder gets the next epoch", async () => {
        const lease = await held(a, "a");
        expect(await a.release(lease)).toBe(true);
        expect(await b.leaseOf(ALICE)).toBeUndefined();
        expect(await held(b, "b")).toMatchObject({ owner: "b", epoch: 2 });
      });

      it("does not release a lease for a tenure that has ended", async () => {
        const lease = await held(a, "a");
        clock.advance(LEASE_MS);
        const taken = await held(b, "b");
        expect(await a.release(lease)).toBe(false);
        expect(await a.leaseOf(ALICE)).toEqual(taken);
      });

      it("releases every lease of a node that leaves, and marks it gone", async () => {
        await a.heartbeat(report("a"), 10_000);
        await b.heartbeat(report("b"), 10_000);
        await held(a, "a", ALICE);
        await held(a, "a", BOB);
        const other = await held(b, "b", asSessionName("carol"));
        expect(await a.leave("a")).toEqual([ALICE, BOB]);
        expect(await b.leasesOf("a")).toEqual([]);
        expect(await b.leasesOf("b")).toEqual([other]);
        const nodes = await b.listNodes();
        expect(nodes.map((node) => [node.nodeId, node.state])).toEqual([
          ["a", "gone"],
          ["b", "serving"],
        ]);
        expect(await held(b, "b", ALICE)).toMatchObject({ epoch: 2 });
      });
    });

    describe("every lease (listLeases, leaseCounts)", () => {
      it("lists none and counts none before any node holds a lease", async () => {
        await a.heartbeat(report("a"), 10_000);
        expect(await a.listLeases()).toEqual([]);
        expect(await a.leaseCounts()).toEqual(new Map());
      });

      it("lists every node's leases by session name, and counts them per node", async () => {
        const carol = await held(b, "b", asSessionName("carol"));
        const bob = await held(a, "a", BOB);
        const alice = await held(a, "a", ALICE);
        expect(await b.listLeases()).toEqual([alice, bob, carol]);
        expect(await b.leaseCounts()).toEqual(
          new Map([
            ["a", 2],
            ["b", 1],
          ]),
        );
      });

      it("keeps an expired lease with its owner until another node takes it over", async () => {
        const alice = await held(a, "a", ALICE);
        const bob = await held(a, "a", BOB);
        clock.advance(LEASE_MS);
        expect(await b.listLeases()).toEqual([alice, bob]);
        expect(await b.leaseCounts()).toEqual(new Map([["a", 2]]));
        const taken = await held(b, "b", ALICE);
        expect(await a.listLeases()).toEqual([taken, bob]);
        expect(await a.leaseCounts()).toEqual(
          new Map([
            ["a", 1],
            ["b", 1],
          ]),
        );
      });

      it("leaves out released leases and those of a node that left", async () => {
        const alice = await held(a, "a", ALICE);
        await held(b, "b", BOB);
        const carol = await held(b, "b", asSessionName("carol"));
        expect(await a.release(alice)).toBe(true);
        expect(await a.listLeases()).toEqual([
          expect.objectContaining({ sessionName: BOB }),
          carol,
        ]);
        await b.leave("b");
        expect(await a.listLeases()).toEqual([]);
        expect(await a.leaseCounts()).toEqual(new Map());
      });
    });

    describe("fenced writes", () => {
      it("runs the write while the lease is this tenure's, and gives its result", async () => {
        const lease = await held(a, "a");
        expect(await a.fencedWrite(lease, () => Promise.resolve("written"))).toBe("written");
      });

      it("refuses the write of a node whose lease was taken over, without running it", async () => {
        const old = await held(a, "a");
        clock.advance(LEASE_MS);
        await held(b, "b");
        let ran = false;
        const failure = await refusal(
          a.fencedWrite(old, () => {
            ran = true;
            return Promise.resolve();
          }),
        );
        expect(failure.code).toBe("lease_lost");
        expect(failure.message).toContain("held by node `b` with epoch 2");
        expect(ran).toBe(false);
      });

      it("refuses the write of a released lease", async () => {
        const lease = await held(a, "a");
        await a.release(lease);
        const failure = await refusal(a.fencedWrite(lease, () => Promise.resolve()));
        expect(failure.code).toBe("lease_lost");
        expect(failure.message).toContain("it is now free");
      });

      it("lets the holder of the newest epoch write past its expiry while no one took it", async () => {
        const lease = await held(a, "a");
        clock.advance(LEASE_MS * 2);
        expect(await a.fencedWrite(lease, () => Promise.resolve(1))).toBe(1);
      });

      it("refuses the write for a session no node ever held, and says it is free", async () => {
        const failure = await refusal(
          a.fencedWrite({ sessionName: asSessionName("nobody"), owner: "a", epoch: 1 }, () =>
            Promise.resolve(),
          ),
        );
        expect(failure.code).toBe("lease_lost");
        expect(failure.message).toContain("it is now free");
      });

      it("passes a failed write's error on", async () => {
        const lease = await held(a, "a");
        const failure = new Error("the write failed");
        await expect(a.fencedWrite(lease, () => Promise.reject(failure))).rejects.toBe(failure);
        expect(await a.fencedWrite(lease, () => Promise.resolve("after"))).toBe("after");
      });
    });
  });
}
