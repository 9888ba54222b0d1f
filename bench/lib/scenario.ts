/** What every scenario gets, and what it gives back for the table. */
import path from "node:path";
import type { DaemonCommand } from "./daemon-command.js";

export interface BenchContext {
  quick: boolean;
  command: DaemonCommand;
  /** `--scale-rate` and `--scale-senders`: the scale run's send rate and senders, when given. */
  scale: { ratePerSecond?: number; senders?: number };
  /** `--profile`: where daemons that scenarios profile write their `.cpuprofile`. */
  profileDir?: string;
  /** `--profile-interval`: microseconds between the profile's samples (V8's default: 1000). */
  profileIntervalUs?: number;
  /** Progress on stderr, so the table on stdout stays clean. */
  log(message: string): void;
}

/** One line of the printed table. */
export interface Row {
  measure: string;
  value: string;
}

export interface Scenario<Result> {
  /** The key in results.json and the heading in the table. */
  name: string;
  run(context: BenchContext): Promise<Result>;
  rows(result: Result): Row[];
}

export function ms(value: number): string {
  return Number.isFinite(value) ? `${Math.round(value)} ms` : "n/a";
}

export function sleep(milliseconds: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

/** Node flags that make a scenario's daemon write a CPU profile, when `--profile` was given. */
export function profiling(
  context: BenchContext,
  scenario: string,
): { nodeArgs: string[]; folder: string } | undefined {
  if (context.profileDir === undefined) return undefined;
  const folder = path.join(context.profileDir, scenario);
  const interval =
    context.profileIntervalUs === undefined
      ? []
      : [`--cpu-prof-interval=${context.profileIntervalUs}`];
  return { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${folder}`, ...interval], folder };
}
