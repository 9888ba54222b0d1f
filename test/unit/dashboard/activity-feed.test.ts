import { describe, expect, it } from "vitest";
import { ManualClock } from "../../support/manual-clock.js";
import { asChatId } from "../../../src/utils/ids.js";
import { createActivityFeed } from "../../../src/dashboard/activity-feed.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import type { ActivityEvent, ActivityStore } from "../../../src/store/activity-store.js";

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

  it("keeps its figures across a restart of the daemon: a new feed reads the store back", () => {
    // The bug this guards: the Health view lived in memory only, so right after a crash it said
    // "No restarts in the last day" and "No errors in the last day" and showed empty charts.
    const clock = new ManualClock(START);
    const store = memoryStore();
    const before = createActivityFeed({ clock, store });
    before.messageAccepted(JOHN, "a");
    clock.advance(2_000);
    before.turnEnded({ chatId: JOHN, messageIds: ["a"], isError: false });
    before.turnEnded({ chatId: JOHN, messageIds: [], isError: true, errorText: "API 400" });
    before.expectRestart(JOHN, "requested from the dashboard");
    before.sessionEvent({ type: "restart", chatId: asChatId(JOHN), reason: "requested" });
    const snapshot = before.snapshot(clock.now());

    clock.advance(60_000);
    const after = createActivityFeed({ clock, store });
    after.daemonRestarted("dispatch started again after it stopped without shutting down");
    const restored = after.snapshot(clock.now());
    expect(restored.hours).toEqual(
      snapshot.hours.map((hour, index, hours) =>
        index === hours.length - 1 ? { ...hour, restarts: 2 } : hour,
      ),
    );
    expect(restored.hours.at(-1)).toMatchObject({ messages: 1, replies: 1, errors: 1 });
    expect(restored.recent_errors).toEqual(snapshot.recent_errors);
    expect(restored.recent_restarts.map((restart) => [restart.chat_id, restart.reason])).toEqual([
      [null, "dispatch started again after it stopped without shutting down"],
      [JOHN, "requested from the dashboard"],
    ]);
  });

  it("reads back only the hours it shows, and prunes what is two windows old", () => {
    const clock = new ManualClock(START);
    const store = memoryStore();
    const old = createActivityFeed({ clock, store });
    old.messageAccepted(JOHN, "a");
    clock.advance(25 * 3_600_000);
    const later = createActivityFeed({ clock, store });
    expect(later.snapshot(clock.now()).hours.every((hour) => hour.messages === 0)).toBe(true);
    expect(store.events).toHaveLength(1); // a day old is kept: younger than two windows
    clock.advance(24 * 3_600_000);
    later.messageAccepted(JOHN, "b");
    expect(store.events.map((event) => event.atMs)).toEqual([clock.now()]);
  });

  it("carries on in memory when the store fails, saying so once", () => {
    const clock = new ManualClock(START);
    const logger = createMemoryLogger();
    const store: ActivityStore = {
      append: () => {
        throw new Error("disk full");
      },
      since: () => [],
      prune: () => 0,
    };
    const feed = createActivityFeed({ clock, store, logger });
    feed.messageAccepted(JOHN, "a");
    feed.messageAccepted(JOHN, "b");
    expect(feed.snapshot(clock.now()).hours.at(-1)).toMatchObject({ messages: 2 });
    expect(logger.records).toEqual([
      { level: "warn", message: "activity-store-failed", fields: { cause: "disk full" } },
    ]);
  });
});

function memoryStore(): ActivityStore & { events: ActivityEvent[] } {
  const events: ActivityEvent[] = [];
  return {
    events,
    append: (event) => void events.push(event),
    since: (sinceMs) => events.filter((event) => event.atMs >= sinceMs),
    prune: (beforeMs) => {
      const kept = events.filter((event) => event.atMs >= beforeMs);
      const removed = events.length - kept.length;
      events.splice(0, events.length, ...kept);
      return removed;
    },
  };
}
