/**
 * What happened between two looks at the sessions, for the activity log when the daemon does not
 * report each message and reply itself: turns, errors and restarts are counted exactly (the
 * registry counts them); messages and reply latency are estimated from the last message time,
 * the oldest unanswered message and the end of the last turn. Pure.
 */

/** What one look at a chat's session shows. Times are epoch milliseconds. */
export interface ActivitySample {
  chatId: string;
  state: string;
  turns: number;
  errors: number;
  restarts: number;
  /** Messages waiting for an answer. */
  queued: number;
  /** The registry's `last_message_time`. */
  lastMessageMs: number | null;
  /** When the oldest unanswered message went into the live session. */
  busySinceMs: number | null;
  /** The live session's last activity: a message pushed, or a turn ended. */
  lastActivityMs: number | null;
}

export type ActivityEvent =
  | { type: "message"; chatId: string; atMs: number }
  | { type: "reply"; chatId: string; atMs: number; latencyMs: number | null }
  | { type: "error"; chatId: string; atMs: number; code: string; message: string }
  | { type: "restart"; chatId: string; atMs: number; reason: string };

/**
 * Events between `before` (the previous look, by chat id) and `after` (this look, at `nowMs`).
 * A chat missing from `before` is new: it counts from zero. `restartReasons` names why a chat was
 * restarted when the caller knows (a restart it asked for).
 */
export function inferActivity(
  before: ReadonlyMap<string, ActivitySample>,
  after: readonly ActivitySample[],
  nowMs: number,
  restartReasons: ReadonlyMap<string, string> = new Map(),
): ActivityEvent[] {
  const events: ActivityEvent[] = [];
  for (const sample of after) {
    const previous = before.get(sample.chatId) ?? emptySample(sample.chatId);
    const { chatId } = sample;
    const turns = Math.max(0, sample.turns - previous.turns);
    const errors = Math.min(turns, Math.max(0, sample.errors - previous.errors));
    const replies = turns - errors;

    const newMessage =
      sample.lastMessageMs !== null && sample.lastMessageMs !== previous.lastMessageMs;
    if (newMessage) {
      const count = Math.max(1, sample.queued - previous.queued + turns);
      for (let index = 0; index < count; index += 1) {
        events.push({ type: "message", chatId, atMs: sample.lastMessageMs ?? nowMs });
      }
    }

    for (let index = 0; index < replies; index += 1) {
      events.push({ type: "reply", chatId, atMs: nowMs, latencyMs: latencyOf(previous, sample) });
    }
    for (let index = 0; index < errors; index += 1) {
      events.push({
        type: "error",
        chatId,
        atMs: nowMs,
        code: "turn_error",
        message: "A turn ended in an error; the daemon's log has the agent's error text.",
      });
    }
    if (sample.state !== previous.state) {
      if (sample.state === "failed") {
        events.push({
          type: "error",
          chatId,
          atMs: nowMs,
          code: "session_failed",
          message: "The agent process stopped unexpectedly; the session will be restarted.",
        });
      } else if (sample.state === "quarantined") {
        events.push({
          type: "error",
          chatId,
          atMs: nowMs,
          code: "session_quarantined",
          message: "Restarted too often: messages stay queued until the session is restarted.",
        });
      }
    }
    const restarts = Math.max(0, sample.restarts - previous.restarts);
    for (let index = 0; index < restarts; index += 1) {
      events.push({
        type: "restart",
        chatId,
        atMs: nowMs,
        reason: restartReasons.get(chatId) ?? restartReason(previous.state),
      });
    }
  }
  return events;
}

/**
 * From the oldest message waiting at the previous look, or else from the last message, to the
 * end of the turn; null when the session is no longer live to say when its turn ended.
 */
function latencyOf(previous: ActivitySample, sample: ActivitySample): number | null {
  const end = sample.lastActivityMs;
  if (end === null) return null;
  const start = previous.busySinceMs ?? sample.lastMessageMs;
  if (start === null || start > end) return null;
  return end - start;
}

function restartReason(previousState: string): string {
  if (previousState === "quarantined") return "quarantine lifted";
  if (previousState === "failed") return "after a failure";
  return "restarted by the daemon or an operator";
}

function emptySample(chatId: string): ActivitySample {
  return {
    chatId,
    state: "stopped",
    turns: 0,
    errors: 0,
    restarts: 0,
    queued: 0,
    lastMessageMs: null,
    busySinceMs: null,
    lastActivityMs: null,
  };
}
