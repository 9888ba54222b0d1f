/**
 * The Health view's activity, fed by the daemon's own events as they happen: a message handed to
 * its session (the dispatcher), a turn's end (the session manager's replies), and restarts,
 * failures and quarantines (the session manager). A reply's latency runs from its oldest message's
 * acceptance to the turn's end. Memory is bounded: the activity log keeps counters and recent
 * events; messages waiting for their reply are remembered up to `maxWaiting`, the oldest dropped.
 *
 * With a `store`, every event is also written to the state database as it happens, and the log
 * is filled from it at start: a restart or a crash of the daemon keeps the last day's figures.
 * A store that fails is logged (once per distinct failure) and never holds up a message.
 */
import type { Clock } from "../utils/clock.js";
import { describeError } from "../utils/errors.js";
import type { SessionEvent } from "../core/session-manager.js";
import type { Logger } from "../logging/logger.js";
import type { ActivityEvent, ActivityStore } from "../store/activity-store.js";
import {
  createActivityLog,
  HOUR_MS,
  type ActivityLog,
  type ActivitySnapshot,
} from "./activity-log.js";

export interface ActivityFeedDeps {
  clock: Clock;
  /** Where the activity goes; a fresh 24-hour log by default. */
  log?: ActivityLog;
  /** Where the activity is kept across restarts; read once at creation. */
  store?: ActivityStore;
  /** Told when the store fails. */
  logger?: Logger;
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
  /** The daemon itself started again after it was stopped without shutting down (a crash). */
  daemonRestarted(reason: string): void;
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
  const { store } = deps;
  let lastStoreFailure: string | undefined;
  /** The hour the store was last pruned in: it keeps two windows' worth, pruned hourly. */
  let prunedHour = Number.NEGATIVE_INFINITY;

  const apply = (event: ActivityEvent) => {
    switch (event.kind) {
      case "message":
        log.recordMessage(event.chatId, event.atMs);
        return;
      case "reply":
        log.recordReply(event.chatId, event.atMs, event.latencyMs);
        return;
      case "error":
        log.recordError(event.chatId, event.atMs, event.code, event.message);
        return;
      case "restart":
        log.recordRestart(event.chatId, event.atMs, event.reason);
        return;
    }
  };
  const storeFailed = (error: unknown) => {
    const cause = describeError(error);
    if (cause !== lastStoreFailure) deps.logger?.warn("activity-store-failed", { cause });
    lastStoreFailure = cause;
  };
  const pruneStore = (nowMs: number) => {
    const hour = Math.floor(nowMs / HOUR_MS);
    if (!store || hour === prunedHour) return;
    prunedHour = hour;
    try {
      store.prune((hour - 2 * log.hours) * HOUR_MS);
    } catch (error) {
      storeFailed(error);
    }
  };
  const record = (event: ActivityEvent) => {
    apply(event);
    if (!store) return;
    pruneStore(event.atMs);
    try {
      store.append(event);
      lastStoreFailure = undefined;
    } catch (error) {
      storeFailed(error);
    }
  };

  if (store) {
    const nowMs = clock.now();
    try {
      const since = (Math.floor(nowMs / HOUR_MS) - log.hours + 1) * HOUR_MS;
      for (const event of store.since(since)) apply(event);
    } catch (error) {
      storeFailed(error);
    }
    pruneStore(nowMs);
  }

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
      record({ kind: "message", atMs: nowMs, chatId });
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
        record({
          kind: "error",
          atMs: nowMs,
          chatId: turn.chatId,
          code: "turn_error",
          message: turn.errorText ?? "A turn ended in an error without saying why.",
        });
        return;
      }
      record({
        kind: "reply",
        atMs: nowMs,
        chatId: turn.chatId,
        latencyMs: startMs === undefined ? null : nowMs - startMs,
      });
    },

    sessionEvent(event) {
      const nowMs = clock.now();
      const { chatId } = event;
      switch (event.type) {
        case "restart":
          record({
            kind: "restart",
            atMs: nowMs,
            chatId,
            reason: restartReason(chatId, event.reason, nowMs),
          });
          return;
        case "fail":
          record({
            kind: "error",
            atMs: nowMs,
            chatId,
            code: "session_failed",
            message: `The agent process stopped unexpectedly: ${event.cause}`,
          });
          return;
        case "replace":
          // The chat carries on in a fresh session: a restart as far as the page is concerned.
          record({ kind: "restart", atMs: nowMs, chatId, reason: `replaced: ${event.reason}` });
          return;
        case "quarantine":
          record({
            kind: "error",
            atMs: nowMs,
            chatId,
            code: "session_quarantined",
            message: `Restarted too often (last: ${event.reason}); messages stay queued until the session is restarted.`,
          });
          return;
      }
    },

    expectRestart(chatId, reason) {
      expectedRestarts.set(chatId, { reason, atMs: clock.now() });
    },

    daemonRestarted(reason) {
      record({ kind: "restart", atMs: clock.now(), chatId: null, reason });
    },

    snapshot: (nowMs) => log.snapshot(nowMs),
  };
}
