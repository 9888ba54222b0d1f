/**
 * Time as a port, so the 5-minute health check and the 2-hour idle timeout can be driven by a
 * manual clock in tests (`test/support/manual-clock.ts`).
 */
export interface Clock {
  now(): number;
  /** Calls `callback` every `intervalMs`; returns a function that cancels it. */
  every(intervalMs: number, callback: () => void): () => void;
  /** Calls `callback` once after `delayMs`; returns a function that cancels it. */
  after(delayMs: number, callback: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  every(intervalMs, callback) {
    const timer = setInterval(callback, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  },
  after(delayMs, callback) {
    const timer = setTimeout(callback, delayMs);
    timer.unref();
    return () => clearTimeout(timer);
  },
};
