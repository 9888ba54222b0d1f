import { describe, expect, it } from "vitest";

/**
 * The page's own modules: plain JavaScript (JSDoc-typed, without declarations), imported as they
 * are served; the types here say what the tests use of them.
 */
const CLIENT = "../../../src/dashboard/client";
const { clockTime, dayLabel, relativeTime } = (await import(`${CLIENT}/format.js`)) as {
  clockTime: (iso: string | null, nowMs?: number, options?: { seconds?: boolean }) => string;
  dayLabel: (iso: string | null, nowMs?: number) => string;
  relativeTime: (iso: string | null, nowMs?: number) => string;
};
const { niceSteps } = (await import(`${CLIENT}/charts.js`)) as {
  niceSteps: (highest: number, integers?: boolean) => number[];
};

/** Local times, so the tests hold in any time zone. */
const NOW = new Date(2026, 2, 10, 14, 30, 0).getTime();
const at = (...parts: [number, number, number, number, number]) => new Date(...parts).toISOString();
const timeOf = (iso: string) =>
  new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

describe("the page's times", () => {
  it("give the time alone for today, and the day with it for any other day", () => {
    // The bug this guards: turns, messages and chart hours showed "11:40:02 PM" with no date,
    // so yesterday's turn read as today's.
    const today = at(2026, 2, 10, 9, 15);
    expect(clockTime(today, NOW)).toBe(timeOf(today));
    const yesterday = at(2026, 2, 9, 23, 40);
    expect(clockTime(yesterday, NOW)).toBe(`yesterday, ${timeOf(yesterday)}`);
    const earlier = at(2026, 1, 3, 8, 0);
    expect(clockTime(earlier, NOW)).toBe(
      `${new Date(earlier).toLocaleDateString([], { day: "numeric", month: "short" })}, ${timeOf(earlier)}`,
    );
    expect(dayLabel(at(2025, 11, 31, 12, 0), NOW)).toContain("2025");
    expect(dayLabel(earlier, NOW)).not.toContain("2026");
    expect(clockTime(null, NOW)).toBe("");
    expect(clockTime("not a time", NOW)).toBe("");
  });

  it("say how long ago within a day, and the day and time beyond", () => {
    expect(relativeTime(new Date(NOW - 3_000).toISOString(), NOW)).toBe("just now");
    expect(relativeTime(new Date(NOW - 5 * 3_600_000).toISOString(), NOW)).toBe("5 h ago");
    const twoDaysAgo = at(2026, 2, 8, 10, 0);
    expect(relativeTime(twoDaysAgo, NOW)).toMatch(/^\S+ \S+, /);
    expect(relativeTime(twoDaysAgo, NOW)).toContain(
      new Date(twoDaysAgo).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }),
    );
  });
});

describe("the charts' value axis", () => {
  it("steps in round numbers from zero to at least the highest value", () => {
    expect(niceSteps(3, true)).toEqual([0, 1, 2, 3]);
    expect(niceSteps(12, true)).toEqual([0, 5, 10, 15]);
    expect(niceSteps(1, true)).toEqual([0, 1]);
    expect(niceSteps(1)).toEqual([0, 0.5, 1]);
    expect(niceSteps(2.4)).toEqual([0, 1, 2, 3]);
    expect(niceSteps(0)).toEqual([0, 1]);
    for (const highest of [0.3, 7, 99, 1234, 86_400]) {
      const steps = niceSteps(highest);
      expect(steps[0]).toBe(0);
      expect(steps.at(-1)!).toBeGreaterThanOrEqual(highest);
      expect(steps.length).toBeLessThanOrEqual(5);
    }
  });
});
