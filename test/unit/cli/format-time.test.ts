import { describe, expect, it } from "vitest";
import { formatDuration, formatRelativeTime } from "../../../src/cli/format-time.js";

const now = new Date("2026-02-07T12:00:00.000Z");
const before = (ms: number): Date => new Date(now.getTime() - ms);

describe("formatRelativeTime", () => {
  it.each([
    [0, "just now"],
    [4_999, "just now"],
    [5_000, "5s ago"],
    [59_999, "59s ago"],
    [60_000, "1m ago"],
    [3 * 60_000 + 59_000, "3m ago"],
    [60 * 60_000, "1h ago"],
    [23 * 3_600_000 + 59 * 60_000, "23h ago"],
    [24 * 3_600_000, "1d ago"],
    [400 * 24 * 3_600_000, "400d ago"],
  ])("%i ms before now reads %s", (elapsedMs, expected) => {
    expect(formatRelativeTime(before(elapsedMs), now)).toBe(expected);
  });

  it("reads a future time (clock skew) as 'in ...'", () => {
    expect(formatRelativeTime(before(-3 * 60_000), now)).toBe("in 3m");
  });

  it("accepts ISO strings as the API sends them", () => {
    expect(formatRelativeTime("2026-02-07T11:30:00.000Z", now)).toBe("30m ago");
  });

  it("names missing and unparseable times instead of printing NaN", () => {
    expect(formatRelativeTime(null, now)).toBe("never");
    expect(formatRelativeTime(undefined, now)).toBe("never");
    expect(formatRelativeTime("not a date", now)).toBe("unknown");
  });
});

describe("formatDuration", () => {
  it.each([
    [0, "0s"],
    [45_000, "45s"],
    [60_000, "1m"],
    [200_000, "3m 20s"],
    [7_500_000, "2h 5m"],
    [7_200_000, "2h"],
    [4 * 86_400_000 + 3_600_000 + 59_000, "4d 1h"],
    [86_400_000, "1d"],
  ])("%i ms is %s", (durationMs, expected) => {
    expect(formatDuration(durationMs)).toBe(expected);
  });

  it("never prints a negative duration", () => {
    expect(formatDuration(-5_000)).toBe("0s");
  });
});
