/**
 * Times for people: "3m ago", "2h 5m". Pure; the caller passes `now`, so tests need no clock.
 */

const SECOND_MS = 1000;
const MINUTE_MS = 60 * SECOND_MS;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/** Below this a time reads "just now" rather than a count of seconds. */
const JUST_NOW_MS = 5 * SECOND_MS;

/**
 * How long before `now` a time was, in its largest whole unit: "just now", "42s ago", "3m ago",
 * "5h ago", "12d ago". A time in the future (a clock skew) reads "in 3m". A missing or
 * unparseable time reads `never` / `unknown` so a table cell is never empty.
 */
export function formatRelativeTime(time: Date | string | null | undefined, now: Date): string {
  if (time === null || time === undefined) return "never";
  const then = typeof time === "string" ? new Date(time) : time;
  const thenMs = then.getTime();
  if (Number.isNaN(thenMs)) return "unknown";
  const elapsedMs = now.getTime() - thenMs;
  if (Math.abs(elapsedMs) < JUST_NOW_MS) return "just now";
  const amount = largestUnit(Math.abs(elapsedMs));
  return elapsedMs > 0 ? `${amount} ago` : `in ${amount}`;
}

/** A duration as its two largest units: "45s", "3m 20s", "2h 5m", "4d 1h". */
export function formatDuration(durationMs: number): string {
  const totalSeconds = Math.max(0, Math.floor(durationMs / SECOND_MS));
  const days = Math.floor(totalSeconds / 86_400);
  const hours = Math.floor((totalSeconds % 86_400) / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  if (days > 0) return hours > 0 ? `${days}d ${hours}h` : `${days}d`;
  if (hours > 0) return minutes > 0 ? `${hours}h ${minutes}m` : `${hours}h`;
  if (minutes > 0) return seconds > 0 ? `${minutes}m ${seconds}s` : `${minutes}m`;
  return `${seconds}s`;
}

function largestUnit(durationMs: number): string {
  if (durationMs < MINUTE_MS) return `${Math.floor(durationMs / SECOND_MS)}s`;
  if (durationMs < HOUR_MS) return `${Math.floor(durationMs / MINUTE_MS)}m`;
  if (durationMs < DAY_MS) return `${Math.floor(durationMs / HOUR_MS)}h`;
  return `${Math.floor(durationMs / DAY_MS)}d`;
}
