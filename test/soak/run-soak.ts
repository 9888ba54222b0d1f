/**
 * `npm run soak`: the long crash loop. Defaults: 20 contacts, a quarter of whose messages open a
 * burst that steers a running turn, 50 SIGKILL restarts, each 3-15 s after the daemon answers
 * `/healthz` (later when it has answered nothing by then, so every run makes progress on a busy
 * machine), about 15 to 25 minutes on 2 cores. Prints the seed first, so a
 * run can be repeated with `--seed`; exits 1 unless nothing was lost, duplicated or out of order.
 *
 * `--nodes N` (2 or more) runs it on a cluster instead (`cluster-crash-loop.ts`): N daemons on one
 * private PostgreSQL database, `--restarts` node kills (kill -9 of a node's process group, started
 * again once its chats moved), contacts sending to random live nodes; the report adds the node
 * kills and the failover time (median and max).
 */
import { parseArgs } from "node:util";
import { runClusterCrashLoop } from "./cluster-crash-loop.js";
import { runCrashLoop } from "./crash-loop.js";
import { formatClusterReport, formatReport } from "./report.js";
import { passed } from "./judge.js";

const HELP = `Usage: npm run soak -- [options]

  --restarts N        SIGKILL restarts of the daemon (default 50); with --nodes, node kills
  --nodes N           1 (default): one daemon; 2 or more: a cluster of N daemons on one private
                      PostgreSQL database, a node picked at random killed (kill -9 of its
                      process group) and started again once its chats moved to the others
  --lease-seconds N   with --nodes: cluster.leaseSeconds of every node, 3 to 30 (default 5)
  --contacts N        contacts sending at once (default 20)
  --seed N            seed of the kill moments, pauses and reply delays (default: random)
  --kill-min-ms N     shortest run of the daemon before a kill, from /healthz (default 3000);
                      a daemon that has answered nothing by then runs until it has
  --kill-max-ms N     longest run (default 15000)
  --drain-ms N        after the last start, how long contacts get to finish (default 300000)
  --steer-percent N   chance, per message, that a contact sends a burst of 2 to 5 messages,
                      the rest while the first one's turn runs (default 25; 0: never)
  --keep-home         keep the temporary home (journal, transcripts) for a look afterwards
  --help              this text`;

function positiveInteger(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 0 || (number === 0 && name !== "--seed")) {
    throw new Error(
      `Expected \`${name}\` to be a ${name === "--seed" ? "non-negative" : "positive"} integer, got \`${value}\`. See --help.`,
    );
  }
  return number;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      restarts: { type: "string" },
      contacts: { type: "string" },
      seed: { type: "string" },
      "kill-min-ms": { type: "string" },
      "kill-max-ms": { type: "string" },
      "drain-ms": { type: "string" },
      "steer-percent": { type: "string" },
      nodes: { type: "string" },
      "lease-seconds": { type: "string" },
      "keep-home": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const killMin = positiveInteger("--kill-min-ms", values["kill-min-ms"], 3_000);
  const killMax = positiveInteger("--kill-max-ms", values["kill-max-ms"], 15_000);
  if (killMax < killMin) {
    throw new Error(
      `Expected \`--kill-max-ms\` (${killMax}) to be at least \`--kill-min-ms\` (${killMin}).`,
    );
  }
  const steerPercent = Number(values["steer-percent"] ?? "25");
  if (!Number.isInteger(steerPercent) || steerPercent < 0 || steerPercent > 100) {
    throw new Error(
      `Expected \`--steer-percent\` to be a whole number from 0 to 100, got \`${values["steer-percent"]}\`. See --help.`,
    );
  }
  const nodes = positiveInteger("--nodes", values.nodes, 1);
  const leaseSeconds = positiveInteger("--lease-seconds", values["lease-seconds"], 5);
  if (nodes > 1 && (leaseSeconds < 3 || leaseSeconds > 30)) {
    throw new Error(
      `Expected \`--lease-seconds\` to be a whole number from 3 to 30, got \`${leaseSeconds}\`. See --help.`,
    );
  }
  if (nodes > 1 && values["keep-home"]) {
    throw new Error("`--keep-home` keeps one daemon's home; it does not go with `--nodes`.");
  }
  const seed = positiveInteger("--seed", values.seed, Math.floor(Math.random() * 2 ** 31));
  console.log(`seed ${seed}`);
  const interrupted = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      console.log(`${signal}: stopping the daemon and cleaning up`);
      interrupted.abort();
    });
  }
  const common = {
    contacts: positiveInteger("--contacts", values.contacts, 20),
    seed,
    killAfterMs: { min: killMin, max: killMax },
    thinkMs: { min: 200, max: 2_000 },
    replyDelayMaxMs: 1_500,
    steering: {
      chance: steerPercent / 100,
      messages: { min: 1, max: 4 },
      turnMs: { min: 1_000, max: 3_000 },
    },
    drainMs: positiveInteger("--drain-ms", values["drain-ms"], 5 * 60_000),
    signal: interrupted.signal,
    log: (line: string) => console.log(`[${new Date().toISOString()}] ${line}`),
  };
  const restarts = positiveInteger("--restarts", values.restarts, 50);
  if (nodes > 1) {
    const result = await runClusterCrashLoop({ ...common, nodes, kills: restarts, leaseSeconds });
    console.log(`\n${formatClusterReport(result)}`);
    return passed(result.verdict) ? 0 : 1;
  }
  const result = await runCrashLoop({ ...common, restarts, keepHome: values["keep-home"] });
  console.log(`\n${formatReport(result)}`);
  return passed(result.verdict) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof Error && error.name === "AbortError") {
      console.error("soak interrupted: nothing judged");
      process.exit(130);
    }
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  },
);
