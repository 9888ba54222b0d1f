import { describe, expect, it } from "vitest";
import { ManualClock } from "../../../src/core/clock.js";
import { asChatId } from "../../../src/core/ids.js";
import { createActivityFeed } from "../../../src/dashboard/activity-feed.js";

const JOHN = "+15551234567";
const START = Date.parse("2026-03-01T12:00:00.000Z");

describe("createActivityFeed", () => {
  it("counts accepted messages and times each reply from its oldest message", () => {
    const clock = new ManualClock(START);
    const feed = createActivityFeed({ clock });
    feed.messageAccepted(JOHN, "a");
    clock.advance(1_000);
    feed.messageAccepted(JOHN, "b"); // steered into the running turn
    clock.advance(2_500);
    feed.turnEnded({ chatId: JOHN, messageIds: ["a", "b"], isError: false });
    // A turn whose messages it never saw accepted (before a restart): a reply of unknown latency.
    feed.turnEnded({ chatId: JOHN, messageIds: ["unseen"], isError: false });

    const hour = feed.snapshot(clock.now()).hours.at(-1)!;
    expect(hour).toMatchObject({
      messages: 2,
      replies: 2,
      latency_avg_ms: 3_500,
      latency_max_ms: 3_500,
    });
  });

  it("records error turns, failures and quarantines as errors, with what the daemon said", () => {
    const clock = new ManualClock(START);
    const feed = createActivityFeed({ clock });
    feed.messageAccepted(JOHN, "a");
    feed.turnEnded({
      chatId: JOHN,
      messageIds: ["a"],
      isError: true,
      errorText: "API Error: 529 overloaded",
    });
    clock.advance(1);
    feed.sessionEvent({ type: "fail", chatId: asChatId(JOHN), cause: "exit code 137" });
    clock.advance(1);
    feed.sessionEvent({ type: "quarantine", chatId: asChatId(JOHN), reason: "crashed: boom" });

    const snapshot = feed.snapshot(clock.now());
    expect(snapshot.hours.at(-1)).toMatchObject({ messages: 1, replies: 0, errors: 3 });
    expect(snapshot.recent_errors.map((error) => [error.code, error.message])).toEqual([
      [
        "session_quarantined",
        "Restarted too often (last: crashed: boom); messages stay queued until the session is restarted.",
      ],
      ["session_failed", "The agent process stopped unexpectedly: exit code 137"],
      ["turn_error", "API Error: 529 overloaded"],
    ]);
  });

  it("records restarts with the manager's reason, or the one the dashboard named for its own", () => {
    const clock = new ManualClock(START);
    const feed = createActivityFeed({ clock });
    feed.sessionEvent({ type: "restart", chatId: asChatId(JOHN), reason: "crashed: exit 1" });
    feed.sessionEvent({ type: "restart", chatId: asChatId(JOHN), reason: "requested" });
    feed.expectRestart(JOHN, "requested from the dashboard");
    feed.sessionEvent({ type: "restart", chatId: asChatId(JOHN), reason: "requested" });
    // Named once: the next operator restart is someone else's again.
    feed.sessionEvent({ type: "restart", chatId: asChatId(JOHN), reason: "requested" });
    // A name older than a minute has expired.
    feed.expectRestart(JOHN, "requested from the dashboard");
    clock.advance(61_000);
    feed.sessionEvent({ type: "restart", chatId: asChatId(JOHN), reason: "requested" });

    expect(
      feed
        .snapshot(clock.now())
        .recent_restarts.map((restart) => restart.reason)
        .reverse(),
    ).toEqual([
      "crashed: exit 1",
      "requested by an operator",
      "requested from the dashboard",
      "requested by an operator",
      "requested by an operator",
    ]);
  });

  it("remembers at most `maxWaiting` messages awaiting their reply, dropping the oldest", () => {
    const clock = new ManualClock(START);
    const feed = createActivityFeed({ clock, maxWaiting: 2 });
    feed.messageAccepted(JOHN, "a");
    feed.messageAccepted(JOHN, "b");
    feed.messageAccepted(JOHN, "c");
    clock.advance(500);
    feed.turnEnded({ chatId: JOHN, messageIds: ["a"], isError: false });
    feed.turnEnded({ chatId: JOHN, messageIds: ["c"], isError: false });
    const hour = feed.snapshot(clock.now()).hours.at(-1)!;
    // "a" was forgotten: its reply counts, untimed; "c" is timed.
    expect(hour).toMatchObject({ messages: 3, replies: 2, latency_avg_ms: 500 });
    expect(() => createActivityFeed({ clock, maxWaiting: 0 })).toThrow(
      "Expected `maxWaiting` to be a positive integer, got `0`",
    );
  });
});
