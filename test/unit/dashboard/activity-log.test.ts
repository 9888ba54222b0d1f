import { describe, expect, it } from "vitest";
import { HOUR_MS, createActivityLog } from "../../../src/dashboard/activity-log.js";

const NOON = Date.parse("2026-03-01T12:00:00.000Z");

describe("createActivityLog", () => {
  it("counts messages, replies, errors and restarts per hour over the last 24 hours", () => {
    const log = createActivityLog();
    log.recordMessage("+1", NOON + 5_000);
    log.recordMessage("+2", NOON + 10_000);
    log.recordReply("+1", NOON + 8_000, 3_000);
    log.recordMessage("+1", NOON - HOUR_MS + 1);
    log.recordError("+1", NOON - 3 * HOUR_MS, "turn_error", "failed");
    log.recordRestart("+2", NOON - 3 * HOUR_MS + 60_000, "after a failure");

    const snapshot = log.snapshot(NOON + 30 * 60_000);
    expect(snapshot.hours).toHaveLength(24);
    expect(snapshot.hours.at(-1)).toEqual({
      start: "2026-03-01T12:00:00.000Z",
      messages: 2,
      replies: 1,
      errors: 0,
      restarts: 0,
      latency_avg_ms: 3_000,
      latency_max_ms: 3_000,
    });
    expect(snapshot.hours.at(-2)).toMatchObject({ start: "2026-03-01T11:00:00.000Z", messages: 1 });
    expect(snapshot.hours.at(-4)).toMatchObject({ errors: 1, restarts: 1 });
    expect(snapshot.hours[0]!.start).toBe("2026-02-28T13:00:00.000Z");
  });

  it("averages latency, keeps the slowest, and sorts replies into buckets", () => {
    const log = createActivityLog();
    for (const latency of [200, 800, 1_500, 4_000, 400_000]) log.recordReply("+1", NOON, latency);
    log.recordReply("+1", NOON, null); // counted as a reply, not as a latency
    const snapshot = log.snapshot(NOON);
    expect(snapshot.hours.at(-1)).toMatchObject({
      replies: 6,
      latency_avg_ms: Math.round((200 + 800 + 1_500 + 4_000 + 400_000) / 5),
      latency_max_ms: 400_000,
    });
    expect(snapshot.latency_buckets.map((bucket) => [bucket.label, bucket.count])).toEqual([
      ["up to 1 s", 2],
      ["1 s to 2 s", 1],
      ["2 s to 5 s", 1],
      ["5 s to 10 s", 0],
      ["10 s to 30 s", 0],
      ["30 s to 1 min", 0],
      ["1 min to 5 min", 0],
      ["over 5 min", 1],
    ]);
    expect(snapshot.latency_buckets.at(-1)!.up_to_ms).toBeNull();
  });

  it("forgets what is older than the window, and ignores records already out of it", () => {
    const log = createActivityLog({ hours: 2 });
    log.recordMessage("+1", NOON);
    log.recordError("+1", NOON, "turn_error", "old");
    expect(log.snapshot(NOON).hours.map((hour) => hour.messages)).toEqual([0, 1]);
    expect(log.snapshot(NOON + HOUR_MS).hours.map((hour) => hour.messages)).toEqual([1, 0]);
    expect(log.snapshot(NOON + 2 * HOUR_MS).hours.map((hour) => hour.messages)).toEqual([0, 0]);
    expect(log.snapshot(NOON + 2 * HOUR_MS).recent_errors).toEqual([]);

    log.recordMessage("+1", NOON + 5 * HOUR_MS);
    log.recordMessage("+1", NOON); // far behind the newest hour: dropped
    log.recordMessage("+1", Number.NaN);
    expect(log.snapshot(NOON + 5 * HOUR_MS).hours.map((hour) => hour.messages)).toEqual([0, 1]);
    expect(log.snapshot(NOON).hours.map((hour) => hour.messages)).toEqual([0, 0]);
  });

  it("keeps the latest errors and restarts, newest first, bounded and shortened", () => {
    const log = createActivityLog({ maxRecent: 3 });
    for (let index = 0; index < 5; index += 1) {
      log.recordError(`+${index}`, NOON + index * 1_000, "turn_error", `error ${index}`);
    }
    log.recordError("+late", NOON + 500, "turn_error", "x".repeat(1_000)); // older than most
    const errors = log.snapshot(NOON + 10_000).recent_errors;
    expect(errors.map((error) => error.chat_id)).toEqual(["+4", "+3", "+2"]);
    expect(errors[0]).toEqual({
      chat_id: "+4",
      at: "2026-03-01T12:00:04.000Z",
      code: "turn_error",
      message: "error 4",
    });

    log.recordRestart("+1", NOON, "r".repeat(1_000));
    const [restart] = log.snapshot(NOON).recent_restarts;
    expect(restart!.reason.length).toBe(300);
    expect(restart!.reason.endsWith("…")).toBe(true);
  });

  it("refuses options that make no sense, naming them", () => {
    expect(() => createActivityLog({ hours: 0 })).toThrow(
      "Expected `hours` to be a positive integer, got `0`",
    );
    expect(() => createActivityLog({ maxRecent: 1.5 })).toThrow("`maxRecent`");
  });
});
