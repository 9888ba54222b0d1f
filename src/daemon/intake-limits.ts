import { RateLimitedError } from "../channels/http/http-errors.js";
import { UNKNOWN_TIER, type ChatId } from "../utils/ids.js";
import { RateLimiter } from "../core/rate-limiter.js";

/**
 * What the inbox (`inbox.ts`) takes in, whatever the channel: each chat's messages per minute, counted by
 * its normalised chat id (however the number was written), and how many chats new to dispatch
 * and not in contacts.json it takes per minute. Pure: time comes from the `now()` it is given.
 */
export interface IntakeLimitsOptions {
  /** Messages one chat may send per minute: a burst of this many, then one every 60 s / rate. */
  messagesPerChatPerMinute: number;
  /** New chats of the `unknown` tier taken in any 60 seconds. */
  newUnknownChatsPerMinute: number;
  now: () => number;
}

/** A message about to be taken, as far as the limits need to know it. */
export interface Arrival {
  chatId: ChatId;
  tier: string;
  /** The chat has a registry entry already: it is not new to dispatch. */
  registered: boolean;
}

export interface IntakeLimits {
  /**
   * Counts the message against its chat's budget (and, for a new stranger, against the new
   * chats of the minute), or throws `RateLimitedError` with code `rate_limited` or
   * `too_many_new_chats` and the wait. A refused message is charged nothing.
   */
  admit(arrival: Arrival): void;
}

const WINDOW_MS = 60_000;

export function createIntakeLimits(options: IntakeLimitsOptions): IntakeLimits {
  const perChat = new RateLimiter({
    perMinute: options.messagesPerChatPerMinute,
    now: options.now,
  });
  const newChats = new RollingWindow(options.newUnknownChatsPerMinute, options.now);

  return {
    admit(arrival) {
      const isNew = arrival.tier === UNKNOWN_TIER && !arrival.registered;
      if (isNew) {
        const wait = newChats.check(arrival.chatId);
        if (wait !== undefined) {
          throw new RateLimitedError(
            `dispatch took ${options.newUnknownChatsPerMinute} new chats from senders not in ` +
              "contacts.json in the last minute (`newUnknownChatsPerMinute`); try again in " +
              `${seconds(wait)} s, or add ${arrival.chatId} to contacts.json.`,
            wait,
            { code: "too_many_new_chats" },
          );
        }
      }
      const decision = perChat.take(arrival.chatId);
      if (!decision.allowed) {
        throw new RateLimitedError(
          `Chat ${arrival.chatId} sent more than ${options.messagesPerChatPerMinute} messages a ` +
            `minute (\`messagesPerChatPerMinute\`); try again in ${seconds(decision.retryAfterMs)} s.`,
          decision.retryAfterMs,
        );
      }
      if (isNew) newChats.record(arrival.chatId);
    },
  };
}

/**
 * At most `limit` distinct keys in any `WINDOW_MS`: each admission is remembered for a window, so
 * a key already admitted in it (a new chat's second message, before its registry entry exists)
 * is not counted again.
 */
class RollingWindow {
  /** Admissions in order, oldest first; at most `limit` once expired ones are dropped. */
  private readonly admitted: { key: string; atMs: number }[] = [];

  constructor(
    private readonly limit: number,
    private readonly now: () => number,
  ) {}

  /** Undefined when `key` may be admitted now; otherwise milliseconds until it may. */
  check(key: string): number | undefined {
    const now = this.now();
    this.expire(now);
    if (this.admitted.length < this.limit) return undefined;
    if (this.admitted.some((entry) => entry.key === key)) return undefined;
    return this.admitted[0]!.atMs + WINDOW_MS - now;
  }

  record(key: string): void {
    if (this.admitted.some((entry) => entry.key === key)) return;
    this.admitted.push({ key, atMs: this.now() });
  }

  private expire(now: number): void {
    while (this.admitted.length > 0 && this.admitted[0]!.atMs + WINDOW_MS <= now) {
      this.admitted.shift();
    }
  }
}

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
