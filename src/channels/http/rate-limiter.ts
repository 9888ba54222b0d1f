import { DispatchError } from "../../core/errors.js";

/**
 * In-memory token buckets for `POST /v1/messages`: one per chat and one for everything.
 * Pure: time comes from the `now()` it is given, in milliseconds from any fixed origin.
 */
export interface RateLimiterOptions {
  /** Messages one chat may send per minute (the bucket's size and refill per minute). */
  perChatPerMinute: number;
  /** Messages all chats together may send per minute. */
  globalPerMinute: number;
  now: () => number;
}

export type RateDecision =
  { allowed: true } | { allowed: false; scope: "chat" | "global"; retryAfterMs: number };

const MINUTE_MS = 60_000;
/** Above this many chat buckets, full ones (indistinguishable from new ones) are dropped. */
const PRUNE_THRESHOLD = 10_000;

/**
 * Levels are kept in token-milliseconds-per-minute (one token is MINUTE_MS units, and a bucket
 * gains `perMinute` units per millisecond), so whole-millisecond clocks give exact integers.
 */
interface Bucket {
  units: number;
  updatedAt: number;
}

export class RateLimiter {
  private readonly chats = new Map<string, Bucket>();
  private readonly global: Bucket;
  private readonly perChatPerMinute: number;
  private readonly globalPerMinute: number;
  private readonly now: () => number;

  constructor(options: RateLimiterOptions) {
    assertPositive("perChatPerMinute", options.perChatPerMinute);
    assertPositive("globalPerMinute", options.globalPerMinute);
    this.perChatPerMinute = options.perChatPerMinute;
    this.globalPerMinute = options.globalPerMinute;
    this.now = options.now;
    this.global = { units: options.globalPerMinute * MINUTE_MS, updatedAt: options.now() };
  }

  /**
   * Takes one token from the chat's bucket and one from the global bucket, or none at all when
   * either is empty (a refused message costs nothing).
   */
  take(chatId: string): RateDecision {
    const now = this.now();
    refill(this.global, this.globalPerMinute, now);
    let chat = this.chats.get(chatId);
    if (chat === undefined) {
      this.prune(now);
      chat = { units: this.perChatPerMinute * MINUTE_MS, updatedAt: now };
      this.chats.set(chatId, chat);
    } else {
      refill(chat, this.perChatPerMinute, now);
    }

    if (chat.units < MINUTE_MS) {
      return { allowed: false, scope: "chat", retryAfterMs: waitMs(chat, this.perChatPerMinute) };
    }
    if (this.global.units < MINUTE_MS) {
      return {
        allowed: false,
        scope: "global",
        retryAfterMs: waitMs(this.global, this.globalPerMinute),
      };
    }
    chat.units -= MINUTE_MS;
    this.global.units -= MINUTE_MS;
    return { allowed: true };
  }

  /** How many chats have a bucket (for tests of pruning). */
  get trackedChats(): number {
    return this.chats.size;
  }

  private prune(now: number): void {
    if (this.chats.size < PRUNE_THRESHOLD) return;
    for (const [chatId, bucket] of this.chats) {
      refill(bucket, this.perChatPerMinute, now);
      if (bucket.units >= this.perChatPerMinute * MINUTE_MS) this.chats.delete(chatId);
    }
  }
}

function refill(bucket: Bucket, perMinute: number, now: number): void {
  const elapsedMs = Math.max(0, now - bucket.updatedAt);
  bucket.units = Math.min(perMinute * MINUTE_MS, bucket.units + elapsedMs * perMinute);
  bucket.updatedAt = now;
}

/** Milliseconds until the bucket holds one whole token again. */
function waitMs(bucket: Bucket, perMinute: number): number {
  return Math.ceil((MINUTE_MS - bucket.units) / perMinute);
}

function assertPositive(key: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0) {
    throw new DispatchError(
      "invalid_http_limits",
      `Expected \`${key}\` to be a positive number, got \`${value}\``,
    );
  }
}
