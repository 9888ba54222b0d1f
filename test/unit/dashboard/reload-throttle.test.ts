/**
 * The reload throttle the dashboard's Contacts and Health views share: a change of the sessions
 * loads a view again at most once per interval, counted from the start of its last load.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

interface ReloadThrottle {
  loadStarted(): void;
  request(): void;
  cancel(): void;
}
/** The page's own module, imported as it is served (plain JavaScript, JSDoc-typed). */
const CLIENT = "../../../src/dashboard/client";
const { createReloadThrottle } = (await import(`${CLIENT}/reload-throttle.js`)) as {
  createReloadThrottle: (load: () => void, intervalMs: number) => ReloadThrottle;
};

let loads: number;
let throttle: ReloadThrottle;

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
  loads = 0;
  throttle = createReloadThrottle(() => {
    loads += 1;
    throttle.loadStarted();
  }, 2_000);
});

afterEach(() => {
  vi.useRealTimers();
});

describe("createReloadThrottle", () => {
  it("loads at once when the last load started an interval ago or more", () => {
    throttle.loadStarted();
    vi.advanceTimersByTime(2_000);
    throttle.request();
    vi.advanceTimersByTime(0);
    expect(loads).toBe(1);
  });

  it("waits out the rest of the interval after a load, and folds the changes meanwhile into one load", () => {
    throttle.loadStarted();
    vi.advanceTimersByTime(500);
    throttle.request();
    throttle.request();
    vi.advanceTimersByTime(1_499);
    expect(loads).toBe(0);
    throttle.request();
    vi.advanceTimersByTime(1);
    expect(loads).toBe(1);
    // A change after that load waits a whole interval from its start.
    throttle.request();
    vi.advanceTimersByTime(1_999);
    expect(loads).toBe(1);
    vi.advanceTimersByTime(1);
    expect(loads).toBe(2);
  });

  it("loads nothing once cancelled (the view is gone)", () => {
    throttle.loadStarted();
    throttle.request();
    throttle.cancel();
    vi.advanceTimersByTime(10_000);
    expect(loads).toBe(0);
  });
});
