/** The lease keeper's decisions: how often it renews, and which leases a renewal shows lost. */
import { describe, expect, it } from "vitest";
import {
  expiredWithoutRenewal,
  renewIntervalMs,
  settleRenewal,
} from "../../../src/cluster/lease-policy.js";
import type { Lease } from "../../../src/store/chat-ownership.js";
import { asSessionName } from "../../../src/utils/ids.js";

const lease = (name: string, epoch: number, expiresAt: number): Lease => ({
  sessionName: asSessionName(name),
  owner: "a",
  epoch,
  expiresAt,
});

describe("renewIntervalMs", () => {
  it("renews every third of the lease", () => {
    expect(renewIntervalMs(15_000)).toBe(5_000);
    expect(renewIntervalMs(3_000)).toBe(1_000);
    expect(renewIntervalMs(2)).toBe(1);
  });
});

describe("settleRenewal", () => {
  it("keeps what came back renewed with its new expiry, and loses the rest as taken", () => {
    const sent = [lease("alice", 1, 100), lease("bob", 4, 100), lease("carol", 2, 100)];
    const renewed = [lease("alice", 1, 200), lease("carol", 3, 200)];
    expect(settleRenewal(sent, renewed)).toEqual({
      kept: [lease("alice", 1, 200)],
      lost: [
        { lease: lease("bob", 4, 100), reason: "taken" },
        { lease: lease("carol", 2, 100), reason: "taken" },
      ],
    });
  });
});

describe("expiredWithoutRenewal", () => {
  it("loses, as expired, only the leases that ran out by this node's clock", () => {
    const held = [lease("alice", 1, 100), lease("bob", 1, 101)];
    expect(expiredWithoutRenewal(held, 99)).toEqual([]);
    expect(expiredWithoutRenewal(held, 100)).toEqual([
      { lease: lease("alice", 1, 100), reason: "expired" },
    ]);
  });
});
