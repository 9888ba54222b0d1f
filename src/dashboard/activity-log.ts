/**
 * A bounded in-memory record of what the daemon did lately, for the dashboard's Health view:
 * messages and replies per hour, reply latency, recent errors and restarts. Pure: no timers and
 * no clock; every call passes its time. Memory is bounded by `hours` counters and `maxRecent`
 * events, however much is recorded.
 */

export const HOUR_MS = 3_600_000;

/** Upper bounds of the latency buckets, in milliseconds; the last bucket is open. */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000,
];

export interface ActivityLogOptions {
  /** Hours the per-hour series covers, the current one included. Default 24. */
  hours?: number;
  /** Recent errors and recent restarts kept, each. Default 50. */
  maxRecent?: number;
}

export interface RecentError {
  /** Null for the daemon's own errors. */
  chat_id: string | null;
  at: string;
  code: string;
  message: string;
}

export interface RecentRestart {
  /** Null for a restart of the daemon itself. */
  chat_id: string | null;
  at: string;
  reason: string;
}

export interface HourActivity {
  /** ISO time the hour starts. */
  start: string;
  messages: number;
  replies: number;
  errors: number;
  restarts: number;
  latency_avg_ms: number | null;
  latency_max_ms: number | null;
}

export interface LatencyBucket {
  label: string;
  /** Inclusive upper bound; null for the last, open bucket. */
  up_to_ms: number | null;
  count: number;
}

export interface ActivitySnapshot {
  /** Oldest first; the last entry is the hour `nowMs` falls in. */
  hours: HourActivity[];
  /** Reply latencies over the same hours. */
  latency_buckets: LatencyBucket[];
  /** Newest first, within the same hours. */
  recent_errors: RecentError[];
  recent_restarts: RecentRestart[];
}

export interface ActivityLog {
  /** Hours the per-hour series covers, the current one included. */
  readonly hours: number;
  recordMessage(chatId: string, atMs: number): void;
  /** `latencyMs`: from the message to its reply; null when unknown (the reply still counts). */
  recordReply(chatId: string, atMs: number, latencyMs: number | null): void;
  recordError(chatId: string | null, atMs: number, code: string, message: string): void;
  recordRestart(chatId: string | null, atMs: number, reason: string): void;
  snapshot(nowMs: number): ActivitySnapshot;
}

interface HourCounters {
  messages: number;
  replies: number;
  errors: number;
  restarts: number;
  /** Replies whose latency is known. */
  latencyCount: number;
  latencySumMs: number;
  latencyMaxMs: number;
  /** One count per bucket of `LATENCY_BOUNDS_MS`, plus the open one. */
  latencyBuckets: number[];
}

const MAX_CODE_LENGTH = 64;
const MAX_TEXT_LENGTH = 300;

export function createActivityLog(options: ActivityLogOptions = {}): ActivityLog {
  const hours = options.hours ?? 24;
  const maxRecent = options.maxRecent ?? 50;
  if (!Number.isInteger(hours) || hours <= 0) {
    throw new RangeError(`Expected \`hours\` to be a positive integer, got \`${hours}\``);
  }
  if (!Number.isInteger(maxRecent) || maxRecent <= 0) {
    throw new RangeError(`Expected \`maxRecent\` to be a positive integer, got \`${maxRecent}\``);
  }
  /** Keyed by hour number (epoch ms / HOUR_MS); at most `hours` of them. */
  const counters = new Map<number, HourCounters>();
  const errors: (RecentError & { atMs: number })[] = [];
  const restarts: (RecentRestart & { atMs: number })[] = [];
  let newestHour = Number.NEGATIVE_INFINITY;

  const hourOf = (atMs: number) => Math.floor(atMs / HOUR_MS);

  /** The counters of the hour `atMs` falls in, or undefined when it is too old to keep. */
  const countersAt = (atMs: number): HourCounters | undefined => {
    if (!Number.isFinite(atMs)) return undefined;
    const hour = hourOf(atMs);
    if (hour > newestHour) {
      newestHour = hour;
      for (const key of counters.keys()) if (key <= newestHour - hours) counters.delete(key);
    }
    if (hour <= newestHour - hours) return undefined;
    let entry = counters.get(hour);
    if (!entry) {
      entry = {
        messages: 0,
        replies: 0,
        errors: 0,
        restarts: 0,
        latencyCount: 0,
        latencySumMs: 0,
        latencyMaxMs: 0,
        latencyBuckets: new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0),
      };
      counters.set(hour, entry);
    }
    return entry;
  };

  const remember = <T extends { atMs: number }>(list: T[], item: T) => {
    // Kept in time order (newest last), so a late record lands in its place.
    let index = list.length;
    while (index > 0 && list[index - 1]!.atMs > item.atMs) index -= 1;
    list.splice(index, 0, item);
    if (list.length > maxRecent) list.splice(0, list.length - maxRecent);
  };

  return {
    hours,

    recordMessage(_chatId, atMs) {
      const entry = countersAt(atMs);
      if (entry) entry.messages += 1;
    },

    recordReply(_chatId, atMs, latencyMs) {
      const entry = countersAt(atMs);
      if (!entry) return;
      entry.replies += 1;
      if (latencyMs === null || !Number.isFinite(latencyMs)) return;
      const latency = Math.max(0, latencyMs);
      entry.latencyCount += 1;
      entry.latencySumMs += latency;
      entry.latencyMaxMs = Math.max(entry.latencyMaxMs, latency);
      const bucket = LATENCY_BOUNDS_MS.findIndex((bound) => latency <= bound);
      entry.latencyBuckets[bucket === -1 ? LATENCY_BOUNDS_MS.length : bucket]! += 1;
    },

    recordError(chatId, atMs, code, message) {
      const entry = countersAt(atMs);
      if (!entry) return;
      entry.errors += 1;
      remember(errors, {
        chat_id: chatId,
        at: new Date(atMs).toISOString(),
        atMs,
        code: truncate(code, MAX_CODE_LENGTH),
        message: truncate(message, MAX_TEXT_LENGTH),
      });
    },

    recordRestart(chatId, atMs, reason) {
      const entry = countersAt(atMs);
      if (!entry) return;
      entry.restarts += 1;
      remember(restarts, {
        chat_id: chatId,
        at: new Date(atMs).toISOString(),
        atMs,
        reason: truncate(reason, MAX_TEXT_LENGTH),
      });
    },

    snapshot(nowMs) {
      const currentHour = hourOf(nowMs);
      const firstHour = currentHour - hours + 1;
      const series: HourActivity[] = [];
      const buckets = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
      for (let hour = firstHour; hour <= currentHour; hour += 1) {
        const entry = counters.get(hour);
        series.push({
          start: new Date(hour * HOUR_MS).toISOString(),
          messages: entry?.messages ?? 0,
          replies: entry?.replies ?? 0,
          errors: entry?.errors ?? 0,
          restarts: entry?.restarts ?? 0,
          latency_avg_ms:
            entry && entry.latencyCount > 0
              ? Math.round(entry.latencySumMs / entry.latencyCount)
              : null,
          latency_max_ms: entry && entry.latencyCount > 0 ? entry.latencyMaxMs : null,
        });
        entry?.latencyBuckets.forEach((count, index) => (buckets[index]! += count));
      }
      const since = firstHour * HOUR_MS;
      const recent = <T extends { atMs: number }>(list: T[]) =>
        list
          .filter((item) => item.atMs >= since && item.atMs < (currentHour + 1) * HOUR_MS)
          .reverse()
          .map(({ atMs: _atMs, ...rest }) => rest);
      return {
        hours: series,
        latency_buckets: buckets.map((count, index) => ({
          label: bucketLabel(index),
          up_to_ms: LATENCY_BOUNDS_MS[index] ?? null,
          count,
        })),
        recent_errors: recent(errors),
        recent_restarts: recent(restarts),
      };
    },
  };
}

function bucketLabel(index: number): string {
  const upper = LATENCY_BOUNDS_MS[index];
  const lower = index === 0 ? 0 : LATENCY_BOUNDS_MS[index - 1]!;
  if (upper === undefined) return `over ${formatDuration(lower)}`;
  if (index === 0) return `up to ${formatDuration(upper)}`;
  return `${formatDuration(lower)} to ${formatDuration(upper)}`;
}

function formatDuration(ms: number): string {
  return ms >= 60_000 ? `${ms / 60_000} min` : `${ms / 1000} s`;
}

function truncate(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, length - 1)}…`;
}
