import { DispatchError } from "../utils/errors.js";

/**
 * In-memory token buckets, one per key, all of one size: the inbox keeps one per chat
 * (keyed by the normalised chat id), the HTTP API one for all its messages together.
 * Pure: time comes from the `now()` it is given, in milliseconds from any fixed origin.
 */
export interface RateLimiterOptions {
  /** Messages one key may send per minute (the bucket's size and refill per minute). */
  perMinute: number;
  now: () => number;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterMs: number };

const MINUTE_MS = 60_000;
/** Above this many buckets, full ones (indistinguishable from new ones) are dropped. */
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
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMinute: number;
  private readonly now: () => number;

  constructor(options: RateLimiterOptions) {
    if (!Number.isFinite(options.perMinute) || options.perMinute <= 0) {
      throw new DispatchError(
        "invalid_rate_limit",
        `Expected \`perMinute\` to be a positive number, got \`${options.perMinute}\``,
      );
    }
    this.perMinute = options.perMinute;
    this.now = options.now;
  }

  /** Whether `key` has a token now, without taking it. */
  check(key: string): RateDecision {
    const bucket = this.bucketOf(key, this.now());
    if (bucket.units < MINUTE_MS) return { allowed: false, retryAfterMs: this.waitMs(bucket) };
    return { allowed: true };
  }

  /** Takes one token from the key's bucket, or none when it is empty (a refusal costs nothing). */
  take(key: string): RateDecision {
    const decision = this.check(key);
    if (decision.allowed) this.buckets.get(key)!.units -= MINUTE_MS;
    return decision;
  }

  /** How many keys have a bucket (for tests of pruning). */
  get tracked(): number {
    return this.buckets.size;
  }

  /** The key's bucket, refilled up to now; a new key's starts full. */
  private bucketOf(key: string, now: number): Bucket {
    const bucket = this.buckets.get(key);
    if (bucket !== undefined) {
      this.refill(bucket, now);
      return bucket;
    }
    this.prune(now);
    const fresh = { units: this.perMinute * MINUTE_MS, updatedAt: now };
    this.buckets.set(key, fresh);
    return fresh;
  }

  private prune(now: number): void {
    if (this.buckets.size < PRUNE_THRESHOLD) return;
    for (const [key, bucket] of this.buckets) {
      this.refill(bucket, now);
      if (bucket.units >= this.perMinute * MINUTE_MS) this.buckets.delete(key);
    }
  }

  private refill(bucket: Bucket, now: number): void {
    const elapsedMs = Math.max(0, now - bucket.updatedAt);
    bucket.units = Math.min(this.perMinute * MINUTE_MS, bucket.units + elapsedMs * this.perMinute);
    bucket.updatedAt = now;
  }

  /** Milliseconds until the bucket holds one whole token again. */
  private waitMs(bucket: Bucket): number {
    return Math.ceil((MINUTE_MS - bucket.units) / this.perMinute);
  }
}
