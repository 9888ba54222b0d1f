import { describe, expect, it } from "vitest";
import { failoverTimes, median, type NodeKill } from "./failover-times.js";

const T0 = Date.parse("2026-12-08T01:00:00.000Z");
const at = (ms: number) => new Date(T0 + ms).toISOString();

describe("failoverTimes", () => {
  const kills: NodeKill[] = [
    { node: "node-1", at: T0, sessions: 2, restartedAt: T0 + 20_000 },
    { node: "node-2", at: T0 + 30_000, sessions: 1, restartedAt: T0 + 50_000 },
    { node: "node-1", at: T0 + 60_000, sessions: 1 },
  ];

  it("times each take-over from the kill of its from-node that it followed", () => {
    const takeOvers = [
      { time: at(6_100), from: "node-1" },
      { time: at(7_300), from: "node-1" },
      { time: at(35_500), from: "node-2" },
      { time: at(66_000), from: "node-1" },
    ];
    expect(failoverTimes(takeOvers, kills)).toEqual([6_100, 7_300, 5_500, 6_000]);
  });

  it("leaves out take-overs from a node that was running (no kill before them while it was down)", () => {
    const takeOvers = [
      { time: at(25_000), from: "node-1" },
      { time: at(20_000), from: "node-3" },
      { time: at(10_000), from: "node-2" },
    ];
    expect(failoverTimes(takeOvers, kills)).toEqual([]);
  });
});

describe("median", () => {
  it("is the middle value, or the mean of the two middle ones", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeUndefined();
  });
});
