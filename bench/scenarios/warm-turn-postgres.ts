/**
 * Warm turn on PostgreSQL, beside the embedded default (issue 14): the `warmTurn` scenario's
 * turn through two daemons at once, one embedded (its state in SQLite, `journal.db`) and one
 * pointed at a private PostgreSQL server on loopback (`DISPATCH_DATABASE_URL`: registry, journal
 * and transcript mirror in the database), and the same turn pushed straight into a long-lived SDK
 * conversation. Turns rotate between the three paths, so background load falls on all alike.
 *
 * Reported for each daemon: its own time for the turn (`Server-Timing`), the client's, the
 * ratio to the direct SDK's push -> result, and its CPU per turn; for the PostgreSQL daemon also
 * the server's CPU per turn (every PostgreSQL process; only that daemon uses the server).
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { createBenchHome, startBenchDaemon, type BenchDaemon } from "../lib/daemon.js";
import { BENCH_TIER, openDirectConversation } from "../lib/direct-sdk.js";
import { contactsFile, phoneNumber } from "../lib/fixtures.js";
import { startBenchModel } from "../lib/model.js";
import { postgresFailure, startBenchPostgres, type BenchPostgres } from "../lib/postgres.js";
import { cpuMs, mainThreadCpuMs } from "../lib/process-tree.js";
import { ms, sleep, type BenchContext, type Row, type Scenario } from "../lib/scenario.js";
import { round, roundSummary, summarize } from "../lib/stats.js";
import {
  arrival,
  CHATS,
  marker,
  PAUSE_BETWEEN_TURNS_MS,
  times,
  WARM_UPS_PER_PATH,
  type DispatchTimes,
  type PathTimes,
  type Sample,
} from "./warm-turn.js";

export interface DaemonPath extends DispatchTimes {
  /** In the daemon / the direct SDK's push -> result, at the median and at p95. */
  ratio: { median: number; p95: number };
  /** The daemon's CPU per turn: its main thread's and the whole process's. */
  cpuPerTurnMs?: { mainThread: number; process: number };
  failed: number;
}

export interface WarmTurnPostgresResult {
  turns: number;
  embedded: DaemonPath;
  postgres: DaemonPath;
  direct: PathTimes;
  /** The PostgreSQL daemon's time in the daemon over the embedded one's, median and p95. */
  postgresOverEmbedded: { median: number; p95: number };
  /** Every PostgreSQL process's CPU over the measured turns, per turn of the PostgreSQL daemon. */
  serverCpuPerTurnMs: number;
}

interface DaemonSide {
  daemon: BenchDaemon;
  samples: Sample[];
  failed: number;
  cpuBefore?: { mainThread: number | undefined; process: number };
}

async function run(context: BenchContext): Promise<WarmTurnPostgresResult | { skipped: string }> {
  const turns = context.quick ? 10 : 60;
  let server: BenchPostgres;
  try {
    server = await startBenchPostgres();
  } catch (error) {
    const skipped = postgresFailure(error);
    context.log(`warm turn on PostgreSQL left out: ${skipped}`);
    return { skipped };
  }
  const model = await startBenchModel();
  const config = { spareProcesses: 0, maxLiveSessions: 4 };
  const contacts = contactsFile(CHATS, BENCH_TIER);
  const embeddedHome = await createBenchHome({ config, contacts });
  const postgresHome = await createBenchHome({ config, contacts });
  const sides: DaemonSide[] = [];
  try {
    const url = await server.createDatabase();
    const embedded: DaemonSide = {
      daemon: await startBenchDaemon({
        command: context.command,
        home: embeddedHome,
        modelUrl: model.url,
      }),
      samples: [],
      failed: 0,
    };
    sides.push(embedded);
    const postgres: DaemonSide = {
      daemon: await startBenchDaemon({
        command: context.command,
        home: postgresHome,
        modelUrl: model.url,
        env: { DISPATCH_DATABASE_URL: url, DISPATCH_NODE_ID: "bench-pg" },
      }),
      samples: [],
      failed: 0,
    };
    sides.push(postgres);
    const directFolder = path.join(embeddedHome.home, "direct-sdk", "warm");
    await mkdir(directFolder, { recursive: true });
    const direct = openDirectConversation(
      { modelUrl: model.url, home: embeddedHome.home },
      directFolder,
    );
    const directSamples: Sample[] = [];
    let directFailed = 0;
    try {
      const viaDaemon = (side: DaemonSide) => async (turn: number, measured: boolean) => {
        const tag = marker();
        const outcome = await side.daemon.post(
          phoneNumber(turn % CHATS),
          `warm turn ${turn} ${tag}`,
        );
        if (!outcome.ok) {
          side.failed += 1;
          context.log(
            `warm turn on PostgreSQL: a daemon's turn failed: ${outcome.error ?? outcome.status}`,
          );
          return;
        }
        if (outcome.daemonMs === undefined) {
          throw new Error("[bench] The daemon's reply had no Server-Timing header");
        }
        if (measured) {
          side.samples.push({
            toModel: arrival(model, tag, outcome.sentAt),
            total: outcome.elapsedMs,
            inDaemon: outcome.daemonMs,
          });
        }
      };
      const viaSdk = async (turn: number, measured: boolean) => {
        const tag = marker();
        const result = await direct.send(`warm turn ${turn} ${tag}`);
        if (result.isError) {
          directFailed += 1;
          return;
        }
        if (measured) {
          directSamples.push({
            toModel: arrival(model, tag, result.pushedAt),
            total: result.elapsedMs,
          });
        }
      };
      const paths = [viaDaemon(embedded), viaDaemon(postgres), viaSdk];

      context.log(`warm turn on PostgreSQL: starting ${CHATS} sessions on each daemon`);
      for (let turn = 0; turn < CHATS; turn += 1) {
        await paths[0]!(turn, false);
        await paths[1]!(turn, false);
      }
      await viaSdk(0, false);
      await sleep(1_000); // the first turn's title request and transcript writes settle
      for (let turn = 0; turn < WARM_UPS_PER_PATH * CHATS; turn += 1) {
        for (const path of paths) await path(turn, false);
      }
      for (const side of sides) side.failed = 0; // warm-up failures would show up again below
      directFailed = 0;

      for (const side of sides) {
        side.cpuBefore = {
          mainThread: await mainThreadCpuMs(side.daemon.pid),
          process: await cpuMs(side.daemon.pid),
        };
      }
      const serverBefore = await server.cpuMs();
      for (let turn = 0; turn < turns; turn += 1) {
        const order = paths.map((_, index) => paths[(index + turn) % paths.length]!);
        for (const path of order) {
          await path(turn, true);
          await sleep(PAUSE_BETWEEN_TURNS_MS);
        }
      }
      const serverCpuMs = (await server.cpuMs()) - serverBefore;
      context.log(`warm turn on PostgreSQL: ${turns} turns on each path measured`);
      const directTimes = times(directSamples);
      const summaries: DaemonPath[] = [];
      for (const side of sides) {
        const mainThread = await mainThreadCpuMs(side.daemon.pid);
        const processMs = await cpuMs(side.daemon.pid);
        const before = side.cpuBefore!;
        const inDaemonMs = roundSummary(
          summarize(side.samples.map((sample) => sample.inDaemon ?? 0)),
        );
        summaries.push({
          ...times(side.samples),
          inDaemonMs,
          ratio: {
            median: round(inDaemonMs.median / directTimes.totalMs.median, 3),
            p95: round(inDaemonMs.p95 / directTimes.totalMs.p95, 3),
          },
          ...(mainThread === undefined || before.mainThread === undefined
            ? {}
            : {
                cpuPerTurnMs: {
                  mainThread: round((mainThread - before.mainThread) / turns, 2),
                  process: round((processMs - before.process) / turns, 2),
                },
              }),
          failed: side.failed,
        });
      }
      const [embeddedPath, postgresPath] = summaries as [DaemonPath, DaemonPath];
      if (directFailed > 0)
        context.log(`warm turn on PostgreSQL: ${directFailed} direct turns failed`);
      return {
        turns,
        embedded: embeddedPath,
        postgres: postgresPath,
        direct: directTimes,
        postgresOverEmbedded: {
          median: round(postgresPath.inDaemonMs.median / embeddedPath.inDaemonMs.median, 3),
          p95: round(postgresPath.inDaemonMs.p95 / embeddedPath.inDaemonMs.p95, 3),
        },
        serverCpuPerTurnMs: round(serverCpuMs / turns, 2),
      };
    } finally {
      await direct.close();
    }
  } finally {
    for (const side of sides) {
      const stop = await side.daemon.stop();
      if (stop.leftover.length > 0) {
        context.log(`warm turn on PostgreSQL: ${stop.leftover.length} processes left`);
      }
    }
    await model.close();
    await server.stop();
    await embeddedHome.remove();
    await postgresHome.remove();
  }
}

function daemonRows(label: string, side: DaemonPath): Row[] {
  return [
    {
      measure: `${label}: sent -> reply (median / p95)`,
      value: `${ms(side.totalMs.median)} / ${ms(side.totalMs.p95)}`,
    },
    {
      measure: `${label}: accepted -> reply out, in the daemon (median / p95)`,
      value: `${ms(side.inDaemonMs.median)} / ${ms(side.inDaemonMs.p95)}`,
    },
    {
      measure: `${label}: ratio in the daemon / direct SDK (median / p95)`,
      value: `${side.ratio.median.toFixed(2)} / ${side.ratio.p95.toFixed(2)}`,
    },
    ...(side.cpuPerTurnMs
      ? [
          {
            measure: `${label}: daemon CPU per turn, main thread / whole process`,
            value: `${side.cpuPerTurnMs.mainThread} ms / ${side.cpuPerTurnMs.process} ms`,
          },
        ]
      : []),
    { measure: `${label}: failed turns`, value: String(side.failed) },
  ];
}

function rows(result: WarmTurnPostgresResult | { skipped: string }): Row[] {
  if (!("turns" in result))
    return [{ measure: "PostgreSQL", value: `left out: ${result.skipped}` }];
  return [
    ...daemonRows("embedded (SQLite)", result.embedded),
    ...daemonRows("PostgreSQL", result.postgres),
    {
      measure: `direct SDK: push -> result (median / p95), ${result.turns} turns`,
      value: `${ms(result.direct.totalMs.median)} / ${ms(result.direct.totalMs.p95)}`,
    },
    {
      measure: "PostgreSQL / embedded, in the daemon (median / p95)",
      value: `${result.postgresOverEmbedded.median.toFixed(2)} / ${result.postgresOverEmbedded.p95.toFixed(2)}`,
    },
    {
      measure: "PostgreSQL server CPU per turn (every server process)",
      value: `${result.serverCpuPerTurnMs} ms`,
    },
  ];
}

export const warmTurnPostgres: Scenario<WarmTurnPostgresResult | { skipped: string }> = {
  name: "warmTurnPostgres",
  run,
  rows,
};
