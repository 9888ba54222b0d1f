/**
 * `npm run bench`: runs every scenario against the stand-in model on loopback, prints a table
 * and writes bench/results.json. Not a test: nothing here passes or fails except a broken run.
 *
 *   npm run bench                  the full run (a few minutes on 2 cores)
 *   npm run bench -- --quick       a short run for CI smoke use
 *   npm run bench -- --only warmTurn,registry
 *   npm run bench -- --only envelope    envelope bytes per message, request bytes at turns 1/50/200
 *   npm run bench -- --only warmTurnPostgres,leases   the warm turn on PostgreSQL, fences, leases
 *   npm run bench -- --only scalePostgres,scaleCluster   the scale run on 1 and on 3 PostgreSQL nodes
 *   npm run bench -- --runner tsx  run the daemon from source instead of compiled JavaScript
 *   npm run bench -- --markdown    also print the table as Markdown (for docs/performance.md)
 *   npm run bench -- --only scale --scale-rate 1 --scale-senders 200
 *   npm run bench -- --only warmTurn,scale --profile   where the daemon's CPU goes (perturbs it)
 *   npm run bench -- --only warmTurn --profile --profile-interval 200   finer samples (in µs)
 */
import { mkdtemp, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { prepareDaemonCommand, REPO, type DaemonRunner } from "./lib/daemon-command.js";
import { stopAllDaemons } from "./lib/daemon.js";
import { killDirectProcesses } from "./lib/direct-sdk.js";
import { assertProcfs, machineCpuTicks } from "./lib/process-tree.js";
import { fsyncLatency } from "./lib/fsync-probe.js";
import { formatMarkdown, formatTable, machineFacts, type Section } from "./lib/report.js";
import type { BenchContext, Scenario } from "./lib/scenario.js";
import { evaluateTargets, targetRows } from "./lib/targets.js";
import { coldStart } from "./scenarios/cold-start.js";
import { envelope } from "./scenarios/envelope.js";
import { leases } from "./scenarios/leases.js";
import { memory } from "./scenarios/memory.js";
import { registry } from "./scenarios/registry.js";
import { scale, scaleCluster, scalePostgres } from "./scenarios/scale.js";
import { warmTurn } from "./scenarios/warm-turn.js";
import { warmTurnPostgres } from "./scenarios/warm-turn-postgres.js";

/** In the order they run: the quiet ones first, the scale runs (which load the machine) last. */
const SCENARIOS = [
  warmTurn,
  warmTurnPostgres,
  coldStart,
  memory,
  registry,
  leases,
  envelope,
  scale,
  scalePostgres,
  scaleCluster,
] as Scenario<unknown>[];

function positive<Key extends string>(
  flag: string,
  raw: string | undefined,
  key: Key,
): Partial<Record<Key, number>> {
  if (raw === undefined) return {};
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    throw new Error(`[bench] Expected \`${flag}\` to be a positive number, got \`${raw}\``);
  }
  return { [key]: value } as Partial<Record<Key, number>>;
}

function isRunner(value: string): value is DaemonRunner {
  return value === "dist" || value === "tsx";
}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      runner: { type: "string", default: "dist" },
      output: { type: "string" },
      markdown: { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
      "profile-interval": { type: "string" },
      "scale-rate": { type: "string" },
      "scale-senders": { type: "string" },
    },
  });
  const runner = values.runner;
  if (!isRunner(runner)) {
    throw new Error(`[bench] Expected \`--runner\` to be "dist" or "tsx", got \`${runner}\``);
  }
  const names = SCENARIOS.map((scenario) => scenario.name);
  const only = values.only?.split(",").map((name) => name.trim());
  for (const name of only ?? []) {
    if (!names.includes(name)) {
      throw new Error(
        `[bench] Unknown scenario \`${name}\` in --only; expected ${names.join(", ")}`,
      );
    }
  }
  return {
    quick: values.quick,
    runner,
    only,
    output: values.output ?? path.join(REPO, "bench", "results.json"),
    markdown: values.markdown,
    profile: values.profile,
    ...positive("--profile-interval", values["profile-interval"], "profileIntervalUs"),
    scale: {
      ...positive("--scale-rate", values["scale-rate"], "ratePerSecond"),
      ...positive("--scale-senders", values["scale-senders"], "senders"),
    },
  };
}

async function main(): Promise<void> {
  assertProcfs();
  const options = parseOptions();
  const machine = { ...machineFacts(), fsync4kB: await fsyncLatency() };
  const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);
  log(`${options.quick ? "quick" : "full"} run on ${machine.cpus} CPUs, node ${machine.node}`);
  if (machine.loadAverageAtStart[0]! > machine.cpus * 0.5) {
    log(`the machine is busy (load ${machine.loadAverageAtStart[0]}): figures will be noisy`);
  }
  const command = await prepareDaemonCommand(options.runner);
  log(
    `daemon runs as: node ${command.args.join(" ")} (${Math.round(command.prepareMs)} ms to prepare)`,
  );
  for (const warning of command.warnings) log(`tsc: ${warning}`);
  const profileDir = options.profile
    ? await mkdtemp(path.join(os.tmpdir(), "dispatch-bench-profiles-"))
    : undefined;
  if (profileDir) log(`daemon CPU profiles go to ${profileDir}`);
  const context: BenchContext = {
    quick: options.quick,
    command,
    scale: options.scale,
    log,
    ...(profileDir ? { profileDir } : {}),
    ...(options.profileIntervalUs === undefined
      ? {}
      : { profileIntervalUs: options.profileIntervalUs }),
  };

  const started = performance.now();
  const results: Record<string, unknown> = {};
  const conditions: Record<
    string,
    { seconds: number; machineBusyShare: number; loadAverage: number }
  > = {};
  const sections: Section[] = [];
  for (const scenario of SCENARIOS) {
    if (options.only && !options.only.includes(scenario.name)) continue;
    log(`--- ${scenario.name}`);
    const scenarioStarted = performance.now();
    const ticksBefore = await machineCpuTicks();
    const result = await scenario.run(context);
    const ticksAfter = await machineCpuTicks();
    conditions[scenario.name] = {
      seconds: Math.round((performance.now() - scenarioStarted) / 1000),
      // Everything the machine did meanwhile, other people's work included.
      machineBusyShare:
        Math.round(
          ((ticksAfter.busy - ticksBefore.busy) / (ticksAfter.total - ticksBefore.total)) * 100,
        ) / 100,
      loadAverage: Math.round(os.loadavg()[0]! * 100) / 100,
    };
    results[scenario.name] = result;
    sections.push({ title: scenario.name, rows: scenario.rows(result) });
  }
  const targets = evaluateTargets(results);
  sections.push({ title: "targets (issues 5, 14 and 17)", rows: targetRows(targets) });

  process.stdout.write(`${formatTable(sections)}\n`);
  if (options.markdown) process.stdout.write(`\n${formatMarkdown(sections)}\n`);
  const report = {
    machine: {
      ...machine,
      loadAverageAtEnd: os.loadavg().map((value) => Math.round(value * 100) / 100),
    },
    run: {
      mode: options.quick ? "quick" : "full",
      profiled: options.profile,
      daemonRunner: command.runner,
      seconds: Math.round((performance.now() - started) / 1000),
      scenarios: conditions,
    },
    results,
    targets,
  };
  await writeFile(options.output, `${JSON.stringify(report, null, 2)}\n`);
  log(`wrote ${path.relative(process.cwd(), options.output) || options.output}`);
}

let interrupted = false;
process.once("SIGINT", () => {
  interrupted = true;
  process.stderr.write("[bench] interrupted: stopping daemons\n");
  killDirectProcesses();
  void stopAllDaemons().finally(() => process.exit(130));
});

main().then(
  // Every daemon and CLI process has been stopped and checked by now; what is left are the
  // SDK's idle timers (up to a minute), which need not hold the shell.
  () => process.exit(0),
  async (error: unknown) => {
    process.stderr.write(
      `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    if (interrupted) return;
    killDirectProcesses();
    await stopAllDaemons();
    process.exit(1);
  },
);
