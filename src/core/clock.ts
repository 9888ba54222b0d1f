/**
 * Time as a port, so the 5-minute health check and the 2-hour idle timeout can be driven by a
 * manual clock in tests.
 */
export interface Clock {
  now(): number;
  /** Calls `callback` every `intervalMs`; returns a function that cancels it. */
  every(intervalMs: number, callback: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  every(intervalMs, callback) {
    const timer = setInterval(callback, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  },
};

/** A clock that only moves when told to; `advance` fires every interval that falls due. */
export class ManualClock implements Clock {
  private current: number;
  private readonly timers = new Set<{ intervalMs: number; due: number; callback: () => void }>();

  constructor(start = Date.parse("2026-01-01T00:00:00.000Z")) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  every(intervalMs: number, callback: () => void): () => void {
    const timer = { intervalMs, due: this.current + intervalMs, callback };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }

  advance(durationMs: number): void {
    const target = this.current + durationMs;
    for (;;) {
      let next: { intervalMs: number; due: number; callback: () => void } | undefined;
      for (const timer of this.timers) {
        if (timer.due <= target && (!next || timer.due < next.due)) next = timer;
      }
      if (!next) break;
      this.current = next.due;
      next.due += next.intervalMs;
      next.callback();
    }
    this.current = target;
  }
}
