import { describe, expect, it } from "vitest";
import { inferActivity, type ActivitySample } from "../../../src/dashboard/activity-inference.js";

const T = Date.parse("2026-03-01T12:00:00.000Z");

function sample(overrides: Partial<ActivitySample> = {}): ActivitySample {
  return {
    chatId: "+15551234567",
    state: "idle",
    turns: 0,
    errors: 0,
    restarts: 0,
    queued: 0,
    lastMessageMs: null,
    busySinceMs: null,
    lastActivityMs: null,
    ...overrides,
  };
}

const byChat = (...samples: ActivitySample[]) =>
  new Map(samples.map((item) => [item.chatId, item]));

describe("inferActivity", () => {
  it("sees nothing when nothing changed", () => {
    const before = sample({ turns: 3, lastMessageMs: T, lastActivityMs: T + 500 });
    expect(inferActivity(byChat(before), [before], T + 1_000)).toEqual([]);
  });

  it("counts a message answered between two looks, timed from the message to the turn's end", () => {
    const before = sample({ turns: 1, lastMessageMs: T - 60_000 });
    const after = sample({ turns: 2, lastMessageMs: T, lastActivityMs: T + 700 });
    expect(inferActivity(byChat(before), [after], T + 1_000)).toEqual([
      { type: "message", chatId: "+15551234567", atMs: T },
      { type: "reply", chatId: "+15551234567", atMs: T + 1_000, latencyMs: 700 },
    ]);
  });

  it("times a reply from the oldest message that was waiting at the look before", () => {
    const waiting = sample({ state: "busy", queued: 1, lastMessageMs: T, busySinceMs: T });
    const steered = sample({ state: "busy", queued: 2, lastMessageMs: T + 2_000, busySinceMs: T });
    const answered = sample({ turns: 1, lastMessageMs: T + 2_000, lastActivityMs: T + 5_000 });

    // The first look at a new chat: everything counts from zero.
    expect(inferActivity(new Map(), [waiting], T + 100)).toEqual([
      { type: "message", chatId: "+15551234567", atMs: T },
    ]);
    expect(inferActivity(byChat(waiting), [steered], T + 2_100)).toEqual([
      { type: "message", chatId: "+15551234567", atMs: T + 2_000 },
    ]);
    expect(inferActivity(byChat(steered), [answered], T + 5_500)).toEqual([
      { type: "reply", chatId: "+15551234567", atMs: T + 5_500, latencyMs: 5_000 },
    ]);
  });

  it("reports error turns as errors, not replies, and a session going to failed or quarantined", () => {
    const before = sample({ turns: 2, errors: 0, lastMessageMs: T });
    const after = sample({ state: "failed", turns: 4, errors: 1, lastMessageMs: T });
    const events = inferActivity(byChat(before), [after], T + 1_000);
    expect(events.map((event) => event.type)).toEqual(["reply", "error", "error"]);
    expect(events[1]).toMatchObject({ code: "turn_error" });
    expect(events[2]).toMatchObject({ code: "session_failed" });

    const quarantined = inferActivity(
      byChat(after),
      [{ ...after, state: "quarantined" }],
      T + 2_000,
    );
    expect(quarantined).toEqual([
      expect.objectContaining({ type: "error", code: "session_quarantined" }),
    ]);
  });

  it("counts restarts, with the reason the caller knows or one from the state before", () => {
    const failed = sample({ state: "failed", restarts: 1 });
    const restarted = sample({ state: "starting", restarts: 2 });
    expect(inferActivity(byChat(failed), [restarted], T)).toEqual([
      { type: "restart", chatId: "+15551234567", atMs: T, reason: "after a failure" },
    ]);
    expect(
      inferActivity(
        byChat(failed),
        [restarted],
        T,
        new Map([["+15551234567", "requested from the dashboard"]]),
      ),
    ).toEqual([
      { type: "restart", chatId: "+15551234567", atMs: T, reason: "requested from the dashboard" },
    ]);
  });

  it("leaves latency unknown when the session is no longer live to say when its turn ended", () => {
    const before = sample({ turns: 0, queued: 1, lastMessageMs: T, busySinceMs: T });
    const after = sample({ state: "stopped", turns: 1, lastMessageMs: T, lastActivityMs: null });
    expect(inferActivity(byChat(before), [after], T + 1_000)).toEqual([
      { type: "reply", chatId: "+15551234567", atMs: T + 1_000, latencyMs: null },
    ]);
  });
});
