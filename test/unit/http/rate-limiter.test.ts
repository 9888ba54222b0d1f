import { describe, expect, it } from "vitest";
import { RateLimiter } from "../../../src/channels/http/rate-limiter.js";
import { DispatchError } from "../../../src/core/errors.js";

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
  it("lets a chat send its per-minute budget at once, then refuses with the wait for one token", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perChatPerMinute: 3, globalPerMinute: 100, now: clock.now });
    expect([1, 2, 3].map(() => limiter.take("+1555").allowed)).toEqual([true, true, true]);
    expect(limiter.take("+1555")).toEqual({ allowed: false, scope: "chat", retryAfterMs: 20_000 });
  });

  it("refills continuously: one token per (60 s / rate)", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perChatPerMinute: 2, globalPerMinute: 100, now: clock.now });
    limiter.take("a");
    limiter.take("a");
    clock.advance(10_000);
    expect(limiter.take("a")).toEqual({ allowed: false, scope: "chat", retryAfterMs: 20_000 });
    clock.advance(19_999);
    expect(limiter.take("a").allowed).toBe(false);
    clock.advance(1);
    expect(limiter.take("a").allowed).toBe(true);
    expect(limiter.take("a").allowed).toBe(false);
  });

  it("never holds more than one minute's budget after a long quiet spell", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perChatPerMinute: 2, globalPerMinute: 100, now: clock.now });
    clock.advance(60 * 60_000);
    expect([1, 2, 3].map(() => limiter.take("a").allowed)).toEqual([true, true, false]);
  });

  it("keeps chats apart", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perChatPerMinute: 1, globalPerMinute: 100, now: clock.now });
    expect(limiter.take("a").allowed).toBe(true);
    expect(limiter.take("a").allowed).toBe(false);
    expect(limiter.take("b").allowed).toBe(true);
  });

  it("caps all chats together, and reports the global scope", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perChatPerMinute: 10, globalPerMinute: 2, now: clock.now });
    expect(limiter.take("a").allowed).toBe(true);
    expect(limiter.take("b").allowed).toBe(true);
    expect(limiter.take("c")).toEqual({ allowed: false, scope: "global", retryAfterMs: 30_000 });
  });

  it("charges nothing for a refused message", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({ perChatPerMinute: 1, globalPerMinute: 2, now: clock.now });
    expect(limiter.take("a").allowed).toBe(true);
    // Refused by the chat bucket: the global bucket must keep its second token.
    expect(limiter.take("a").allowed).toBe(false);
    expect(limiter.take("a").allowed).toBe(false);
    expect(limiter.take("b").allowed).toBe(true);
    // Refused by the global bucket: c's own bucket must stay full.
    expect(limiter.take("c").allowed).toBe(false);
    clock.advance(30_000);
    expect(limiter.take("c").allowed).toBe(true);
  });

  it("drops full chat buckets once it tracks many chats", () => {
    const clock = manualClock();
    const limiter = new RateLimiter({
      perChatPerMinute: 1,
      globalPerMinute: 1_000_000,
      now: clock.now,
    });
    for (let index = 0; index < 10_000; index++) limiter.take(`chat-${index}`);
    expect(limiter.trackedChats).toBe(10_000);
    clock.advance(60_000);
    limiter.take("newcomer");
    expect(limiter.trackedChats).toBe(1);
    // A pruned chat starts again with a full bucket, as it would have anyway.
    expect(limiter.take("chat-1").allowed).toBe(true);
  });

  it("rejects a rate that is not a positive number, naming it", () => {
    const now = () => 0;
    expect(() => new RateLimiter({ perChatPerMinute: 0, globalPerMinute: 1, now })).toThrow(
      /`perChatPerMinute` to be a positive number, got `0`/,
    );
    expect(() => new RateLimiter({ perChatPerMinute: 1, globalPerMinute: NaN, now })).toThrow(
      DispatchError,
    );
  });
});
