/**
 * The daemon as a node, on a manual clock over the embedded ownership adapter: its row at start,
 * heartbeats that carry the pool's free slots, lease health as `GET /v1/nodes` shows it, and a
 * graceful stop that leaves the row `gone`.
 */
import { describe, expect, it } from "vitest";
import { startNodePresence } from "../../../src/daemon/node-presence.js";
import { toNodeView } from "../../../src/daemon/node-view.js";
import type { NodeState } from "../../../src/store/chat-ownership.js";
import {
  createMemoryChatOwnership,
  createMemoryOwnershipRows,
} from "../../../src/store/memory-chat-ownership.js";
import { asSessionName } from "../../../src/utils/ids.js";
import { ManualClock } from "../../support/manual-clock.js";
import { createMemoryLogger } from "../../support/memory-logger.js";

const LEASE_MS = 15_000;

async function start() {
  const clock = new ManualClock();
  const rows = createMemoryOwnershipRows();
  const ownership = createMemoryChatOwnership({ rows, clock });
  const pool = { live: 1, bound: 4 };
  let state: NodeState = "serving";
  const channels = ["http"];
  const node = await startNodePresence({
    ownership,
    nodeId: "mac-mini:7878",
    address: () => "http://127.0.0.1:7878",
    channels: () => channels,
    pool: () => pool,
    state: () => state,
    chatsOf: () => Promise.resolve(new Map([["mac-mini:7878", 3]])),
    leaseMs: LEASE_MS,
    clock,
    logger: createMemoryLogger(),
  });
  return {
    clock,
    rows,
    ownership,
    pool,
    channels,
    node,
    setState: (next: NodeState) => (state = next),
  };
}

describe("startNodePresence", () => {
  it("writes the node's row at start: address, start time, slots, channels, serving", async () => {
    const { node, clock } = await start();
    expect(await node.listNodes()).toEqual([
      {
        node_id: "mac-mini:7878",
        address: "http://127.0.0.1:7878",
        state: "serving",
        started_at: new Date(clock.now()).toISOString(),
        last_heartbeat_at: new Date(clock.now()).toISOString(),
        heartbeat_age_seconds: 0,
        lease: "alive",
        pool: { live: 1, total: 4 },
        channels: ["http"],
        chats: 3,
        self: true,
      },
    ]);
  });

  it("heartbeats every third of the lease with the pool's slots and channels as they are then", async () => {
    const { node, clock, pool, channels, setState } = await start();
    const startedAt = new Date(clock.now()).toISOString();
    pool.live = 3;
    channels.push("imessage");
    setState("draining");
    clock.advance(LEASE_MS / 3 - 1);
    expect((await node.listNodes())[0]).toMatchObject({
      pool: { live: 1, total: 4 },
      heartbeat_age_seconds: 5,
    });
    clock.advance(1);
    await Promise.resolve();
    const [view] = await node.listNodes();
    expect(view).toMatchObject({
      state: "draining",
      started_at: startedAt,
      pool: { live: 3, total: 4 },
      channels: ["http", "imessage"],
      heartbeat_age_seconds: 0,
      lease: "alive",
    });
  });

  it("names itself the owner of every session: it is the only node", async () => {
    const { node } = await start();
    expect(node.ownerOf(asSessionName("john-doe"))).toBe("mac-mini:7878");
  });

  it("leaves at a graceful stop: the row is gone and its heartbeats stop", async () => {
    const { node, clock, ownership } = await start();
    const held = await ownership.acquire(asSessionName("john-doe"), "mac-mini:7878", LEASE_MS);
    expect(held.acquired).toBe(true);
    await node.leave();
    await node.leave(); // twice is once
    const [view] = await node.listNodes();
    expect(view?.state).toBe("gone");
    expect(await ownership.leaseOf(asSessionName("john-doe"))).toBeUndefined();
    clock.advance(LEASE_MS);
    expect((await node.listNodes())[0]).toMatchObject({ state: "gone", lease: "expired" });
  });
});

describe("toNodeView", () => {
  const row = {
    nodeId: "box-2:7878",
    address: "http://10.0.0.6:7878",
    startedAt: Date.parse("2026-02-07T12:00:00.000Z"),
    liveSlotsFree: 6,
    liveSlotsTotal: 8,
    channels: ["http"],
    state: "serving" as const,
    heartbeatExpiresAt: Date.parse("2026-02-07T14:00:15.000Z"),
  };

  it("is alive until the heartbeat's expiry, expired from it on", () => {
    const at = (iso: string) =>
      toNodeView({ row, leaseMs: LEASE_MS, now: Date.parse(iso), chats: 2, self: false });
    expect(at("2026-02-07T14:00:14.999Z")).toMatchObject({
      lease: "alive",
      last_heartbeat_at: "2026-02-07T14:00:00.000Z",
      heartbeat_age_seconds: 15,
    });
    expect(at("2026-02-07T14:00:15.000Z").lease).toBe("expired");
    expect(at("2026-02-07T14:01:00.000Z")).toMatchObject({
      lease: "expired",
      heartbeat_age_seconds: 60,
      pool: { live: 2, total: 8 },
      chats: 2,
      self: false,
    });
  });
});
