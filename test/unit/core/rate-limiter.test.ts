import { describe, expect, it } from "vitest";
import { DispatchError } from "../../../src/utils/errors.js";
import { RateLimiter } from "../../../src/core/rate-limiter.js";

function manualClock(start = 1_000) {
  let time = start;
  return {
    now: () => time,
    advance: (ms: number) => {
      time += ms;
    },
  };
}

describe("RateLimiter", () => {
  it("lets a key send its per-minute budget at once, then refuses with the wait for one token", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perMinute: 3, now: clock.now });
    expect([1, 2, 3].map(() => limiter.take("+1555").allowed)).toEqual([true, true, true]);
    expect(limiter.take("+1555")).toEqual({ allowed: false, retryAfterMs: 20_000 });
  });

  it("refills continuously: one token per (60 s / rate)", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perMinute: 2, now: clock.now });
    limiter.take("a");
    limiter.take("a");
    clock.advance(10_000);
    expect(limiter.take("a")).toEqual({ allowed: false, retryAfterMs: 20_000 });
    clock.advance(19_999);
    expect(limiter.take("a").allowed).toBe(false);
    clock.advance(1);
    expect(limiter.take("a").allowed).toBe(true);
    expect(limiter.take("a").allowed).toBe(false);
  });

  it("never holds more than one minute's budget after a long quiet spell", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perMinute: 2, now: clock.now });
    clock.advance(60 * 60_000);
    expect([1, 2, 3].map(() => limiter.take("a").allowed)).toEqual([true, true, false]);
  });

  it("keeps keys apart", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perMinute: 1, now: clock.now });
    expect(limiter.take("a").allowed).toBe(true);
    expect(limiter.take("a").allowed).toBe(false);
    expect(limiter.take("b").allowed).toBe(true);
  });

  it("checks without taking, and charges nothing for a refusal", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perMinute: 1, now: clock.now });
    expect(limiter.check("a")).toEqual({ allowed: true });
    expect(limiter.check("a")).toEqual({ allowed: true });
    expect(limiter.take("a").allowed).toBe(true);
    expect(limiter.check("a")).toEqual({ allowed: false, retryAfterMs: 60_000 });
    expect(limiter.take("a").allowed).toBe(false);
    clock.advance(60_000);
    // The refusals did not push the next token further away.
    expect(limiter.take("a").allowed).toBe(true);
  });

  it("drops full buckets once it tracks many keys", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perMinute: 1, now: clock.now });
    for (let index = 0; index < 10_000; index++) limiter.take(`chat-${index}`);
    expect(limiter.tracked).toBe(10_000);
    clock.advance(60_000);
    limiter.take("newcomer");
    expect(limiter.tracked).toBe(1);
    // A pruned key starts again with a full bucket, as it would have anyway.
    expect(limiter.take("chat-1").allowed).toBe(true);
  });

  it("rejects a rate that is not a positive number, naming it", () => {
    const now = () => 0;
    expect(() => new RateLimiter({ perMinute: 0, now })).toThrow(
      /`perMinute` to be a positive number, got `0`/,
    );
    expect(() => new RateLimiter({ perMinute: NaN, now })).toThrow(DispatchError);
  });
});
