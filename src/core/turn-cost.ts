/**
 * A turn's own cost, from the running totals the agent reports. Pure.
 *
 * The Agent SDK's `result` message carries no per-turn cost: `total_cost_usd` (and `modelUsage`)
 * are running totals for the process, and a process that resumes a session starts from the total
 * its transcript saved at the last clean exit (after a crash that is an older figure, or none).
 * Only `usage` is per-turn, and it counts the main loop alone. So:
 *
 * - a later turn of the same process costs its total minus the highest total before it;
 * - the first turn of a new session costs its whole total;
 * - the first turn of a resumed session costs its total minus the total the process started
 *   from. That start is found by its tokens: the process's token total less this turn's tokens
 *   equals the token total of the earlier turn whose figure was carried over. When no earlier
 *   turn matches (a crash lost the figure, a subagent ran, nothing was recorded), the cost is
 *   unknown: `null`, never a guess.
 */

/** The agent's running figures after a turn. */
export interface CostReading {
  /** Running cost in USD (the SDK's `total_cost_usd`). */
  totalUsd: number;
  /** Running tokens, every model and kind summed (the SDK's `modelUsage`); null when unreported. */
  totalTokens: number | null;
}

/** What a finished turn tells about its cost. */
export interface TurnCostReport extends CostReading {
  /** This turn's own main-loop tokens (the SDK's per-turn `usage`); null when unreported. */
  turnTokens: number | null;
  /** The process resumed an earlier session, so its totals may start where that one left off. */
  resumed: boolean;
  /** The highest reading of earlier turns of the same process; null for the process's first. */
  previous: CostReading | null;
}

/** Rounds away float noise (0.004728 - 0.002892 = 0.0018359999999999995). */
const PRECISION = 1e10;

/**
 * The turn's own cost in USD, or null when it cannot be told. `earlier`: readings of earlier
 * turns of the same agent session (any process), newest first.
 */
export function turnCostUsd(
  report: TurnCostReport,
  earlier: readonly CostReading[],
): number | null {
  if (!Number.isFinite(report.totalUsd) || report.totalUsd < 0) return null;
  if (report.previous !== null) return difference(report.totalUsd, report.previous.totalUsd);
  if (!report.resumed) return round(report.totalUsd);
  if (report.totalTokens === null || report.turnTokens === null) return null;
  const carriedTokens = report.totalTokens - report.turnTokens;
  if (carriedTokens === 0) return round(report.totalUsd);
  const start = earlier.find((reading) => reading.totalTokens === carriedTokens);
  return start === undefined ? null : difference(report.totalUsd, start.totalUsd);
}

/**
 * The reading the next turn of the same process is measured from: the higher of the two. A
 * lower total (a crashed turn's zeroed figures) would make the next turn look as dear as the
 * whole session.
 */
export function costBaseline(previous: CostReading | null, reading: CostReading): CostReading {
  if (previous === null || !Number.isFinite(previous.totalUsd)) return reading;
  return reading.totalUsd >= previous.totalUsd ? reading : previous;
}

function difference(total: number, start: number): number | null {
  return total >= start ? round(total - start) : null;
}

function round(usd: number): number {
  return Math.round(usd * PRECISION) / PRECISION;
}
