import type { ChatId } from "../utils/ids.js";
import type { SessionSnapshot } from "./session.js";

/** Sessions with nothing to do whose last activity is older than the idle timeout. */
export function findIdle(
  sessions: Iterable<readonly [ChatId, SessionSnapshot]>,
  nowMs: number,
  idleTimeoutMs: number,
): ChatId[] {
  const idle: ChatId[] = [];
  for (const [chatId, snapshot] of sessions) {
    if (snapshot.state !== "idle" || snapshot.unanswered > 0) continue;
    if (nowMs - snapshot.lastActivityMs >= idleTimeoutMs) idle.push(chatId);
  }
  return idle;
}

/** Sessions whose oldest unanswered message has waited longer than the turn timeout. */
export function findStuck(
  sessions: Iterable<readonly [ChatId, SessionSnapshot]>,
  nowMs: number,
  turnTimeoutMs: number,
): ChatId[] {
  const stuck: ChatId[] = [];
  for (const [chatId, snapshot] of sessions) {
    if (snapshot.state !== "busy" || snapshot.busySinceMs === undefined) continue;
    if (nowMs - snapshot.busySinceMs >= turnTimeoutMs) stuck.push(chatId);
  }
  return stuck;
}

export type UnhealthyReason = "process-gone" | "loop-crashed" | "too-many-errors";

/** Why a session needs a restart, or undefined when it is fine. */
export function diagnose(
  snapshot: SessionSnapshot,
  maxConsecutiveErrors: number,
): UnhealthyReason | undefined {
  if (snapshot.loopCrashed || snapshot.state === "failed") return "loop-crashed";
  if (snapshot.consecutiveErrors >= maxConsecutiveErrors) return "too-many-errors";
  const running = snapshot.state === "idle" || snapshot.state === "busy";
  if (running && snapshot.pid !== undefined && !snapshot.processAlive) return "process-gone";
  return undefined;
}

/** Exponential backoff with full jitter: a random delay in [0, min(cap, base * 2^attempt)). */
export function backoffDelayMs(
  attempt: number,
  random: () => number = Math.random,
  baseMs = 1_000,
  capMs = 60_000,
): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}
