/**
 * The cluster soak's failover times, from the kills it made and the `session-take-over` lines the
 * nodes logged (`cluster-crash-loop.ts`). Pure.
 */

export interface NodeKill {
  node: string;
  /** Epoch ms of the SIGKILL. */
  at: number;
  /** How many sessions the killed node ran just before, as the other nodes saw it. */
  sessions: number;
  /** Epoch ms when it answered again after its start. */
  restartedAt?: number;
}

/**
 * Each take-over's time after the kill it followed: a kill of its `from` node before it, while
 * that node was down. Any other take-over (from a node that runs, or stopped gracefully) is not
 * a failover after a kill.
 */
export function failoverTimes(
  takeOvers: readonly { time: string; from?: unknown }[],
  kills: readonly NodeKill[],
): number[] {
  const times: number[] = [];
  for (const line of takeOvers) {
    const at = Date.parse(line.time);
    const kill = kills.find(
      (candidate) =>
        candidate.node === line.from &&
        candidate.at <= at &&
        at <= (candidate.restartedAt ?? Number.POSITIVE_INFINITY),
    );
    if (kill) times.push(at - kill.at);
  }
  return times;
}

/** The middle value (the mean of the two middle ones for an even count); undefined for none. */
export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
