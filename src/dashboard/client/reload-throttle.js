// @ts-check
/* global setTimeout, clearTimeout */
/**
 * How a view loads again when the sessions change (a new chat, a state): at most once per
 * interval, counted from the start of its last load, whoever started it; changes that come while
 * a load waits are folded into that one.
 */

/**
 * @param {() => void} load loads the view again
 * @param {number} intervalMs the shortest time between the starts of two loads
 */
export function createReloadThrottle(load, intervalMs) {
  let lastLoadMs = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let pending;
  return {
    /** To be called as each load of the view starts. */
    loadStarted() {
      lastLoadMs = Date.now();
    },
    /** The sessions changed: load again, as soon as the interval allows. */
    request() {
      if (pending !== undefined) return;
      const waitMs = Math.max(0, intervalMs - (Date.now() - lastLoadMs));
      pending = setTimeout(() => {
        pending = undefined;
        load();
      }, waitMs);
    },
    /** The view is gone: no load waits any more. */
    cancel() {
      clearTimeout(pending);
      pending = undefined;
    },
  };
}
