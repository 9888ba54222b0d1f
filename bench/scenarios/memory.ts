/**
 * Memory. The daemon's own RSS (VmRSS of its process, no children) with 0, 10, 100 and 10,000
 * chats registered (contacts.json and sessions.json written before start, imported into the
 * registry rows at the first start, which also writes the export and so builds its kept image,
 * `store/registry-file-image.ts`), once it has settled; and again after a registry write (one chat
 * forgotten: its row deleted; the export follows within 10 s).
 * Then what one live session costs: the growth of the whole tree (daemon plus CLI children)
 * with a few sessions live, per session, in RSS and in PSS (shared pages split among users).
 */
import { createBenchHome, startBenchDaemon } from "../lib/daemon.js";
import { BENCH_TIER } from "../lib/direct-sdk.js";
import { contactsFile, phoneNumber, registryFile } from "../lib/fixtures.js";
import { startBenchModel } from "../lib/model.js";
import {
  isAgentProcess,
  mb,
  rssKb,
  treeMemory,
  waitForQuiet,
  type TreeMemory,
} from "../lib/process-tree.js";
import { sleep, type BenchContext, type Row, type Scenario } from "../lib/scenario.js";
import { median, round } from "../lib/stats.js";

const REGISTERED = [0, 10, 100, 10_000];

export interface RegisteredMemory {
  chats: number;
  daemonRssMb: number;
  /** The same after the daemon's first registry write (none for 0 chats). */
  afterWriteRssMb?: number;
  /** Start of the process until /healthz answered. */
  startMs: number;
}

export interface LiveSessionMemory {
  sessions: number;
  baseline: { daemonRssMb: number; totalRssMb: number; totalPssMb: number };
  live: { daemonRssMb: number; totalRssMb: number; totalPssMb: number };
  /** (tree with sessions - tree without) / sessions. */
  perSessionRssMb: number;
  perSessionPssMb: number;
  /** The mean CLI child alone. */
  childRssMb: number;
  childPssMb: number;
  /** What the daemon itself grew by per live session. */
  daemonGrowthPerSessionMb: number;
}

export interface MemoryResult {
  daemonRunner: string;
  registered: RegisteredMemory[];
  perLiveSession: LiveSessionMemory;
}

/** The median of five VmRSS readings over a second: one reading catches a GC mid-way. */
async function steadyRssKb(pid: number): Promise<number> {
  const readings: number[] = [];
  for (let index = 0; index < 5; index += 1) {
    readings.push(await rssKb(pid));
    await sleep(200);
  }
  return median(readings);
}

function treeFigures(tree: TreeMemory) {
  return {
    daemonRssMb: mb(tree.rootRssKb),
    totalRssMb: mb(tree.totalRssKb),
    totalPssMb: mb(tree.totalPssKb),
  };
}

async function run(context: BenchContext): Promise<MemoryResult> {
  const model = await startBenchModel();
  const createdAt = new Date().toISOString();
  try {
    const registered: RegisteredMemory[] = [];
    for (const chats of REGISTERED) {
      const home = await createBenchHome({
        config: { spareProcesses: 0 },
        contacts: contactsFile(chats, BENCH_TIER),
        registry: registryFile(chats, BENCH_TIER, createdAt),
      });
      const started = performance.now();
      const daemon = await startBenchDaemon({
        command: context.command,
        home,
        modelUrl: model.url,
      });
      const startMs = performance.now() - started;
      await waitForQuiet(daemon.pid);
      const rss = await steadyRssKb(daemon.pid);
      let afterWrite: number | undefined;
      if (chats > 0) {
        await daemon.forget(phoneNumber(0));
        await sleep(500); // the row's write follows within 25 ms
        await waitForQuiet(daemon.pid);
        afterWrite = await steadyRssKb(daemon.pid);
      }
      await daemon.stop();
      await home.remove();
      registered.push({
        chats,
        daemonRssMb: mb(rss),
        ...(afterWrite === undefined ? {} : { afterWriteRssMb: mb(afterWrite) }),
        startMs: round(startMs, 0),
      });
      context.log(
        `memory: ${chats} registered -> daemon ${mb(rss)} MB` +
          (afterWrite === undefined ? "" : `, ${mb(afterWrite)} MB after a registry write`),
      );
    }

    const sessions = context.quick ? 2 : 4;
    const home = await createBenchHome({
      config: { spareProcesses: 0, maxLiveSessions: sessions },
      contacts: contactsFile(sessions, BENCH_TIER),
    });
    const daemon = await startBenchDaemon({ command: context.command, home, modelUrl: model.url });
    try {
      await waitForQuiet(daemon.pid);
      const baseline = await treeMemory(daemon.pid);
      // Two turns each: a session's memory after its first turn is not yet what it keeps.
      for (let turn = 0; turn < 2; turn += 1) {
        for (let chat = 0; chat < sessions; chat += 1) {
          const outcome = await daemon.post(phoneNumber(chat), `memory turn ${turn}`);
          if (!outcome.ok) throw new Error(`[bench] memory: a turn failed: ${outcome.error ?? ""}`);
        }
      }
      await waitForQuiet(daemon.pid, { timeoutMs: 15_000 });
      const live = await treeMemory(daemon.pid);
      const children = live.descendants.filter(isAgentProcess);
      if (children.length !== sessions) {
        context.log(`memory: expected ${sessions} CLI children, found ${children.length}`);
      }
      const mean = (values: number[]) =>
        values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
      return {
        daemonRunner: context.command.runner,
        registered,
        perLiveSession: {
          sessions,
          baseline: treeFigures(baseline),
          live: treeFigures(live),
          perSessionRssMb: mb((live.totalRssKb - baseline.totalRssKb) / sessions),
          perSessionPssMb: mb((live.totalPssKb - baseline.totalPssKb) / sessions),
          childRssMb: mb(mean(children.map((child) => child.rssKb))),
          childPssMb: mb(mean(children.map((child) => child.pssKb))),
          daemonGrowthPerSessionMb: mb((live.rootRssKb - baseline.rootRssKb) / sessions),
        },
      };
    } finally {
      await daemon.stop();
      await home.remove();
    }
  } finally {
    await model.close();
  }
}

function rows(result: MemoryResult): Row[] {
  const live = result.perLiveSession;
  return [
    ...result.registered.map((entry) => ({
      measure: `daemon RSS, ${entry.chats.toLocaleString("en-US")} chats registered (${result.daemonRunner}): idle / after a registry write`,
      value:
        entry.afterWriteRssMb === undefined
          ? `${entry.daemonRssMb} MB`
          : `${entry.daemonRssMb} / ${entry.afterWriteRssMb} MB`,
    })),
    {
      measure: `per live session, tree growth RSS / PSS (${live.sessions} live)`,
      value: `${live.perSessionRssMb} / ${live.perSessionPssMb} MB`,
    },
    {
      measure: "CLI child alone, RSS / PSS",
      value: `${live.childRssMb} / ${live.childPssMb} MB`,
    },
    {
      measure: "daemon growth per live session",
      value: `${live.daemonGrowthPerSessionMb} MB`,
    },
  ];
}

export const memory: Scenario<MemoryResult> = { name: "memory", run, rows };
