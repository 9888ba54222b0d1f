// @ts-check
/** Formatting for people: times, durations, money, sizes. Pure. */

const numberFormat = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });

/**
 * "12 s ago", "3 min ago", "5 h ago", or the date and time for older times.
 * @param {string | null} iso
 * @param {number} [nowMs]
 */
export function relativeTime(iso, nowMs = Date.now()) {
  if (!iso) return "never";
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return "unknown";
  const seconds = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h ago`;
  return clockTime(iso, nowMs, { seconds: false });
}

/**
 * The day a time falls on, said relative to today when it is near: "today", "yesterday",
 * "3 Feb", or "3 Feb 2025" in another year.
 * @param {string | null} iso
 * @param {number} [nowMs]
 */
export function dayLabel(iso, nowMs = Date.now()) {
  if (!iso) return "";
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return "";
  const date = new Date(ms);
  const now = new Date(nowMs);
  if (sameDay(date, now)) return "today";
  if (sameDay(date, new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1)))
    return "yesterday";
  return date.toLocaleDateString([], {
    day: "numeric",
    month: "short",
    ...(date.getFullYear() === now.getFullYear() ? {} : { year: "numeric" }),
  });
}

/**
 * @param {Date} a
 * @param {Date} b
 */
function sameDay(a, b) {
  return (
    a.getFullYear() === b.getFullYear() &&
    a.getMonth() === b.getMonth() &&
    a.getDate() === b.getDate()
  );
}

/** @param {string | null} iso */
export function absoluteTime(iso) {
  if (!iso) return "";
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : new Date(ms).toLocaleString();
}

/**
 * The time of day, with its day when that is not today: "14:05:09", "yesterday, 23:40:00",
 * "3 Feb, 09:15:00" (in the browser's own format).
 * @param {string | null} iso
 * @param {number} [nowMs]
 * @param {{ seconds?: boolean }} [options]
 */
export function clockTime(iso, nowMs = Date.now(), { seconds = true } = {}) {
  if (!iso) return "";
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return "";
  const time = new Date(ms).toLocaleTimeString([], {
    hour: "2-digit",
    minute: "2-digit",
    ...(seconds ? { second: "2-digit" } : {}),
  });
  const day = dayLabel(iso, nowMs);
  return day === "today" ? time : `${day}, ${time}`;
}

/** @param {number | null | undefined} ms */
export function duration(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${numberFormat.format(ms / 1000)} s`;
  if (ms < 3_600_000) return `${numberFormat.format(ms / 60_000)} min`;
  return `${numberFormat.format(ms / 3_600_000)} h`;
}

/**
 * "$1.25", "$0.0123" (a turn often costs less than a cent), "<$0.0001", "$0"; "–" when unknown.
 * @param {number | null | undefined} usd
 */
export function cost(usd) {
  if (usd === null || usd === undefined || !Number.isFinite(usd)) return "–";
  if (usd === 0) return "$0";
  if (usd < 0.0001) return "<$0.0001";
  if (usd < 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(2)}`;
}

/** Said of every cost in demo mode. */
export const STAND_IN_COST_NOTE =
  "Demo mode: the stand-in model's made-up usage, priced by the CLI. Not a real cost.";

/**
 * What a chat has cost so far: "+" marks turns of unknown cost left out of the sum.
 * @param {{ cost_so_far_usd: number | null, cost_unknown_turns: number }} session
 */
export function costSoFar(session) {
  const known = cost(session.cost_so_far_usd);
  return session.cost_so_far_usd !== null && session.cost_unknown_turns > 0 ? `${known}+` : known;
}

/**
 * Says what `costSoFar` cannot: which turns it leaves out.
 * @param {{ cost_so_far_usd: number | null, cost_unknown_turns: number }} session
 */
export function costSoFarNote(session) {
  if (session.cost_so_far_usd === null) return "No turn of this chat has a recorded cost yet.";
  if (session.cost_unknown_turns === 0) return "Every recorded turn of this chat, summed.";
  return `Every recorded turn of this chat, summed; ${plural(session.cost_unknown_turns, "turn")} of unknown cost left out.`;
}

/** @param {number | null | undefined} bytes */
export function bytes(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  if (bytes < 1024 ** 3) return `${Math.round(bytes / 1024 ** 2)} MB`;
  return `${numberFormat.format(bytes / 1024 ** 3)} GB`;
}

/** @param {number} seconds */
export function uptime(seconds) {
  return duration(seconds * 1000);
}

/** @param {number} count @param {string} one @param {string} [many] */
export function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}
