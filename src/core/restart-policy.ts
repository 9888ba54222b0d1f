import type { ChatId } from "../utils/ids.js";
import { backoffDelayMs } from "./health.js";

export interface RestartPolicyOptions {
  /** More automatic restarts than this within `windowMs` quarantine the chat. */
  maxRestarts: number;
  windowMs: number;
  random?: () => number;
}

export type RestartDecision =
  | { action: "restart"; delayMs: number; attempt: number }
  | { action: "quarantine"; restarts: number };

/**
 * When a failing session is restarted: exponential backoff with full jitter between attempts,
 * and quarantine once it has been restarted too often in a window, so one broken chat cannot
 * spin forever. Pure bookkeeping; the manager owns the timers.
 */
export class RestartPolicy {
  private readonly restartTimes = new Map<ChatId, number[]>();
  private readonly attempts = new Map<ChatId, number>();

  constructor(private readonly options: RestartPolicyOptions) {}

  /** Called for each automatic restart about to happen. */
  next(chatId: ChatId, nowMs: number): RestartDecision {
    const recent = (this.restartTimes.get(chatId) ?? []).filter(
      (time) => nowMs - time < this.options.windowMs,
    );
    recent.push(nowMs);
    this.restartTimes.set(chatId, recent);
    if (recent.length > this.options.maxRestarts)
      return { action: "quarantine", restarts: recent.length - 1 };
    const attempt = this.attempts.get(chatId) ?? 0;
    this.attempts.set(chatId, attempt + 1);
    return { action: "restart", delayMs: backoffDelayMs(attempt, this.options.random), attempt };
  }

  /** A turn went well: the next failure starts the backoff from the beginning. */
  succeeded(chatId: ChatId): void {
    this.attempts.delete(chatId);
  }

  /** An operator restarted the chat by hand: forget its history. */
  reset(chatId: ChatId): void {
    this.attempts.delete(chatId);
    this.restartTimes.delete(chatId);
  }
}
