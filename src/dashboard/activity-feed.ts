/**
 * The Health view's activity, fed by the daemon's own events as they happen: a message handed to
 * its session (the dispatcher), a turn's end (the session manager's replies), and restarts,
 * failures and quarantines (the session manager). A reply's latency runs from its oldest message's
 * acceptance to the turn's end. Memory is bounded: the activity log keeps counters and recent
 * events; messages waiting for their reply are remembered up to `maxWaiting`, the oldest dropped.
 */
import type { Clock } from "../core/clock.js";
import type { SessionEvent } from "../core/session-manager.js";
import { createActivityLog, type ActivityLog, type ActivitySnapshot } from "./activity-log.js";

export interface ActivityFeedDeps {
  clock: Clock;
  /** Where the activity goes; a fresh 24-hour log by default. */
  log?: ActivityLog;
  /** Messages waiting for their reply remembered at most. Default 10,000. */
  maxWaiting?: number;
}

/** A finished turn, as the session manager reports it. */
export interface EndedTurn {
  chatId: string;
  /** The messages it answered, by the UUID the dispatcher gave them. */
  messageIds: readonly string[];
  isError: boolean;
  errorText?: string;
}

export interface ActivityFeed {
  messageAccepted(chatId: string, messageId: string): void;
  turnEnded(turn: EndedTurn): void;
  sessionEvent(event: SessionEvent): void;
  /**
   * Names the reason of a restart about to be asked for (by the dashboard): the chat's next
   * operator restart, within a minute, is recorded with it.
   */
  expectRestart(chatId: string, reason: string): void;
  snapshot(nowMs: number): ActivitySnapshot;
}

/** How long an expected restart's reason waits for the restart. */
const EXPECTED_RESTART_TTL_MS = 60_000;
/** The session manager's reason for a restart an operator asked for. */
const OPERATOR_REASON = "requested";

export function createActivityFeed(deps: ActivityFeedDeps): ActivityFeed {
  const { clock } = deps;
  const log = deps.log ?? createActivityLog();
  const maxWaiting = deps.maxWaiting ?? 10_000;
  if (!Number.isInteger(maxWaiting) || maxWaiting <= 0) {
    throw new RangeError(`Expected \`maxWaiting\` to be a positive integer, got \`${maxWaiting}\``);
  }
  /** When each message waiting for its reply was accepted, oldest first (Map keeps order). */
  const acceptedAt = new Map<string, number>();
  const expectedRestarts = new Map<string, { reason: string; atMs: number }>();

  const restartReason = (chatId: string, reason: string, nowMs: number): string => {
    const expected = expectedRestarts.get(chatId);
    expectedRestarts.delete(chatId);
    if (reason !== OPERATOR_REASON) return reason;
    if (expected && nowMs - expected.atMs <= EXPECTED_RESTART_TTL_MS) return expected.reason;
    return "requested by an operator";
  };

  return {
    messageAccepted(chatId, messageId) {
      const nowMs = clock.now();
      log.recordMessage(chatId, nowMs);
      acceptedAt.delete(messageId);
      acceptedAt.set(messageId, nowMs);
      if (acceptedAt.size > maxWaiting) {
        const oldest = acceptedAt.keys().next().value;
        if (oldest !== undefined) acceptedAt.delete(oldest);
      }
    },

    turnEnded(turn) {
      const nowMs = clock.now();
      let startMs: number | undefined;
      for (const id of turn.messageIds) {
        const atMs = acceptedAt.get(id);
        acceptedAt.delete(id);
        if (atMs !== undefined) startMs = Math.min(startMs ?? atMs, atMs);
      }
      if (turn.isError) {
        log.recordError(
          turn.chatId,
          nowMs,
          "turn_error",
          turn.errorText ?? "A turn ended in an error without saying why.",
        );
        return;
      }
      log.recordReply(turn.chatId, nowMs, startMs === undefined ? null : nowMs - startMs);
    },

    sessionEvent(event) {
      const nowMs = clock.now();
      switch (event.type) {
        case "restart":
          log.recordRestart(event.chatId, nowMs, restartReason(event.chatId, event.reason, nowMs));
          return;
        case "fail":
          log.recordError(
            event.chatId,
            nowMs,
            "session_failed",
            `The agent process stopped unexpectedly: ${event.cause}`,
          );
          return;
        case "replace":
          // The chat carries on in a fresh session: a restart as far as the page is concerned.
          log.recordRestart(event.chatId, nowMs, `replaced: ${event.reason}`);
          return;
        case "quarantine":
          log.recordError(
            event.chatId,
            nowMs,
            "session_quarantined",
            `Restarted too often (last: ${event.reason}); messages stay queued until the session is restarted.`,
          );
          return;
      }
    },

    expectRestart(chatId, reason) {
      expectedRestarts.set(chatId, { reason, atMs: clock.now() });
    },

    snapshot: (nowMs) => log.snapshot(nowMs),
  };
}
