import type { Clock } from "../../src/utils/clock.js";

interface Timer {
  /** Zero for a one-shot timer. */
  intervalMs: number;
  due: number;
  callback: () => void;
}

/** A clock that only moves when told to; `advance` fires every interval that falls due. */
export class ManualClock implements Clock {
  private current: number;
  private readonly timers = new Set<Timer>();

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

  after(delayMs: number, callback: () => void): () => void {
    const timer = { intervalMs: 0, due: this.current + delayMs, callback };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }

  advance(durationMs: number): void {
    const target = this.current + durationMs;
    for (;;) {
      let next: Timer | undefined;
      for (const timer of this.timers) {
        if (timer.due <= target && (!next || timer.due < next.due)) next = timer;
      }
      if (!next) break;
      this.current = next.due;
      if (next.intervalMs > 0) next.due += next.intervalMs;
      else this.timers.delete(next);
      next.callback();
    }
    this.current = target;
  }
}
