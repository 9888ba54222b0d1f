/** What every scenario gets, and what it gives back for the table. */
import type { DaemonCommand } from "./daemon-command.js";

export interface BenchContext {
  quick: boolean;
  command: DaemonCommand;
  /** `--scale-rate` and `--scale-senders`: the scale run's send rate and senders, when given. */
  scale: { ratePerSecond?: number; senders?: number };
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
