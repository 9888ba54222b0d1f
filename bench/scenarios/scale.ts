/**
 * Scale: many registered contacts, many of them writing, few live sessions. contacts.json and
 * sessions.json hold `registered` chats before start; `senders` of them (a seeded random pick)
 * each send a message, and a tenth send a second one later (by then usually evicted, so it
 * resumes), at Poisson arrivals of `ratePerSecond`, every request `wait: true`. The pool holds
 * `maxLiveSessions` live sessions; the rest wait or evict the least recently used idle one.
 *
 * Every new chat boots a CLI process (more than a second of CPU on this machine), so the send
 * rate is set below what two cores can start; and at most `maxInFlight` requests wait at once
 * (a send due while that many wait is held back, and counted): a machine busy with other work
 * slows the run down instead of growing the queue, and the latencies, without bound.
 */
import { randomUUID } from "node:crypto";
import { metricTotal } from "../lib/daemon-api.js";
import { createBenchHome, startBenchDaemon } from "../lib/daemon.js";
import { BENCH_TIER } from "../lib/direct-sdk.js";
import { contactsFile, phoneNumber, registryFile } from "../lib/fixtures.js";
import { startBenchModel } from "../lib/model.js";
import { cpuMs, machineCpuTicks, mb, sampleTree, treeCpuMs } from "../lib/process-tree.js";
import {
  monotonicUs,
  profileRows,
  summarizeNewestProfile,
  type ProfileSummary,
  type ProfileWindow,
} from "../lib/cpu-profile.js";
import {
  ms,
  profiling,
  sleep,
  type BenchContext,
  type Row,
  type Scenario,
} from "../lib/scenario.js";
import { schedule, type ScheduleSettings } from "../lib/send-schedule.js";
import { round, roundSummary, summarize, type Summary } from "../lib/stats.js";

export interface ScaleSettings extends ScheduleSettings {
  maxLiveSessions: number;
  spareProcesses: number;
  /** Requests waiting for their reply at most at once. */
  maxInFlight: number;
}

export const FULL_SCALE: ScaleSettings = {
  registered: 10_000,
  senders: 1_000,
  repeatShare: 0.05,
  maxLiveSessions: 8,
  spareProcesses: 1,
  ratePerSecond: 1.2,
  maxInFlight: 16,
};

export const QUICK_SCALE: ScaleSettings = {
  registered: 1_000,
  senders: 50,
  repeatShare: 0.1,
  maxLiveSessions: 4,
  spareProcesses: 1,
  ratePerSecond: 1.2,
  maxInFlight: 8,
};

/**
 * As often as a Prometheus server would scrape. GET /metrics lists every registered chat, so
 * scraping it more often would itself load a daemon with 10,000 of them.
 */
const SCRAPE_INTERVAL_MS = 15_000;

interface TimelinePoint {
  atS: number;
  sent: number;
  answered: number;
  live: number;
  waiting: number;
  agentProcesses: number;
  totalRssMb: number;
  daemonRssMb: number;
}

export interface ScaleResult {
  settings: ScaleSettings;
  messages: number;
  answered: number;
  failed: number;
  /** Failure reasons (API error code or fetch failure) and how often. */
  failures: Record<string, number>;
  /** The first few failures as the client saw them. */
  failureExamples: string[];
  /**
   * Requests sent again, with the same `message_id`, after the daemon closed their kept-alive
   * connection as idle just as the client reused it (reset before any response).
   */
  resent: number;
  /** First send until the last reply. */
  durationS: number;
  throughputPerSecond: number;
  /** Sends held back because `maxInFlight` requests were already waiting. */
  heldBack: number;
  latencyMs: Summary;
  evictions: number;
  /** Highest `dispatch_sessions_live` seen in /metrics (scraped every 15 s). */
  maxLiveSessions: number;
  maxWaitingChats: number;
  /** Highest number of Claude CLI children of the daemon (sampled every 250 ms). */
  maxAgentProcesses: number;
  /** maxLiveSessions live plus the spares the daemon may keep. */
  processBound: number;
  poolWithinBound: boolean;
  peakTotalRssMb: number;
  peakDaemonRssMb: number;
  cpu: {
    daemonTreeS: number;
    perMessageMs: number;
    /** The daemon process alone, without its CLI children. */
    daemonOnlyPerMessageMs: number;
    machineBusyShare: number;
  };
  /** Time to answer GET /metrics, which lists every registered chat. */
  metricsScrapeMs: Summary;
  timeline: TimelinePoint[];
  /** With `--profile`: the daemon's CPU while messages flowed. */
  daemonProfile?: ProfileSummary;
}

async function run(context: BenchContext): Promise<ScaleResult> {
  const settings = { ...(context.quick ? QUICK_SCALE : FULL_SCALE), ...context.scale };
  if (!Number.isInteger(settings.senders) || settings.senders > settings.registered) {
    throw new Error(
      `[bench] Expected \`--scale-senders\` to be a whole number up to ${settings.registered}, got \`${settings.senders}\``,
    );
  }
  const sends = schedule(settings);
  const model = await startBenchModel();
  const createdAt = new Date().toISOString();
  const home = await createBenchHome({
    config: {
      maxLiveSessions: settings.maxLiveSessions,
      spareProcesses: settings.spareProcesses,
    },
    contacts: contactsFile(settings.registered, BENCH_TIER),
    registry: registryFile(settings.registered, BENCH_TIER, createdAt),
  });
  const profile = profiling(context, "scale");
  const daemon = await startBenchDaemon({
    command: context.command,
    home,
    modelUrl: model.url,
    ...(profile ? { nodeArgs: profile.nodeArgs } : {}),
  });
  let window: ProfileWindow | undefined;
  const sampler = sampleTree(daemon.pid, 250);
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  const failureExamples: string[] = [];
  let resent = 0;
  const scrapes: number[] = [];
  const timeline: TimelinePoint[] = [];
  let sent = 0;
  let answered = 0;
  let inFlight = 0;
  let heldBack = 0;
  let slotFreed: (() => void) | undefined;
  let maxLive = 0;
  let maxWaiting = 0;
  let finished = false;
  try {
    context.log(
      `scale: ${sends.length} messages from ${settings.senders} of ${settings.registered} chats, ` +
        `~${settings.ratePerSecond}/s (sending takes ~${Math.round((sends.at(-1)?.dueMs ?? 0) / 1000)} s), pool ${settings.maxLiveSessions}`,
    );
    const cpuBefore = await treeCpuMs(daemon.pid);
    const daemonCpuBefore = await cpuMs(daemon.pid);
    const machineBefore = await machineCpuTicks();
    const started = performance.now();
    const startedUs = monotonicUs();

    let wakePoller: () => void = () => undefined;
    const pollerStopped = new Promise<void>((resolve) => (wakePoller = resolve));
    const poller = (async () => {
      while (!finished) {
        const scrapeStarted = performance.now();
        const metrics = await daemon.metrics().catch((error: unknown) => {
          context.log(`scale: GET /metrics failed: ${String(error)}`);
          return new Map<string, number>();
        });
        scrapes.push(performance.now() - scrapeStarted);
        const live = metricTotal(metrics, "dispatch_sessions_live");
        const waiting = metricTotal(metrics, "dispatch_pool_waiting");
        maxLive = Math.max(maxLive, live);
        maxWaiting = Math.max(maxWaiting, waiting);
        const elapsedS = (performance.now() - started) / 1000;
        const peaks = sampler.peaks();
        timeline.push({
          atS: Math.round(elapsedS),
          sent,
          answered,
          live,
          waiting,
          agentProcesses: peaks.lastAgentProcesses,
          totalRssMb: mb(peaks.lastTotalRssKb),
          daemonRssMb: mb(peaks.lastRootRssKb),
        });
        model.forget(); // recorded bodies add up to hundreds of MB over a run
        context.log(
          `scale: ${Math.round(elapsedS)} s, ${sent} sent, ${answered} answered, ${live} live, ` +
            `${waiting} waiting for a slot, daemon ${mb(peaks.lastRootRssKb)} MB`,
        );
        await Promise.race([sleep(SCRAPE_INTERVAL_MS), pollerStopped]);
      }
    })();

    const pending: Promise<void>[] = [];
    for (const send of sends) {
      const wait = started + send.dueMs - performance.now();
      if (wait > 0) await sleep(wait);
      if (inFlight >= settings.maxInFlight) {
        heldBack += 1;
        while (inFlight >= settings.maxInFlight) {
          await new Promise<void>((resolve) => (slotFreed = resolve));
        }
      }
      sent += 1;
      inFlight += 1;
      pending.push(
        daemon.post(phoneNumber(send.chat), `scale ${randomUUID().slice(0, 8)}`).then((outcome) => {
          inFlight -= 1;
          slotFreed?.();
          resent += outcome.resent;
          if (outcome.ok) {
            answered += 1;
            latencies.push(outcome.elapsedMs);
          } else {
            const reason = outcome.error?.split(":")[0] ?? `status ${outcome.status}`;
            failures[reason] = (failures[reason] ?? 0) + 1;
            if (failureExamples.length < 5) failureExamples.push(outcome.error ?? reason);
          }
        }),
      );
    }
    await Promise.all(pending);
    const durationS = (performance.now() - started) / 1000;
    window = { fromUs: startedUs, toUs: monotonicUs() };
    finished = true;
    wakePoller();
    await poller;
    const treeMs = (await treeCpuMs(daemon.pid)) - cpuBefore;
    const daemonMs = (await cpuMs(daemon.pid)) - daemonCpuBefore;
    const machineAfter = await machineCpuTicks();
    const metrics = await daemon.metrics();
    const peaks = await sampler.stop();

    const processBound = settings.maxLiveSessions + settings.spareProcesses;
    await daemon.stop();
    const daemonProfile = profile
      ? await summarizeNewestProfile(profile.folder, window)
      : undefined;
    const failed = sends.length - answered;
    return {
      ...(daemonProfile ? { daemonProfile } : {}),
      settings,
      messages: sends.length,
      answered,
      failed,
      failures,
      failureExamples,
      resent,
      durationS: round(durationS),
      throughputPerSecond: round(answered / durationS, 2),
      heldBack,
      latencyMs: roundSummary(summarize(latencies), 0),
      evictions: metricTotal(metrics, "dispatch_pool_evictions"),
      maxLiveSessions: Math.max(maxLive, metricTotal(metrics, "dispatch_sessions_live")),
      maxWaitingChats: maxWaiting,
      maxAgentProcesses: peaks.peakAgentProcesses,
      processBound,
      poolWithinBound:
        maxLive <= settings.maxLiveSessions && peaks.peakAgentProcesses <= processBound,
      peakTotalRssMb: mb(peaks.peakTotalRssKb),
      peakDaemonRssMb: mb(peaks.peakRootRssKb),
      cpu: {
        daemonTreeS: round(treeMs / 1000),
        perMessageMs: round(treeMs / sends.length, 0),
        daemonOnlyPerMessageMs: round(daemonMs / sends.length, 0),
        machineBusyShare: round(
          (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total),
          2,
        ),
      },
      metricsScrapeMs: roundSummary(summarize(scrapes)),
      timeline,
    };
  } finally {
    finished = true;
    await sampler.stop().catch(() => undefined);
    const stop = await daemon.stop();
    if (stop.leftover.length > 0) {
      context.log(`scale: ${stop.leftover.length} processes were left after SIGTERM (killed)`);
    }
    await model.close();
    await home.remove();
  }
}

function rows(result: ScaleResult): Row[] {
  const { settings, latencyMs } = result;
  return [
    {
      measure: "registered / senders / messages / pool",
      value: `${settings.registered} / ${settings.senders} / ${result.messages} / ${settings.maxLiveSessions}`,
    },
    {
      measure: `throughput (offered ~${settings.ratePerSecond}/s, ${result.heldBack} sends held back)`,
      value: `${result.throughputPerSecond}/s over ${Math.round(result.durationS)} s`,
    },
    {
      measure: "reply latency p50 / p95 / p99",
      value: `${ms(latencyMs.median)} / ${ms(latencyMs.p95)} / ${ms(latencyMs.p99)}`,
    },
    { measure: "failed messages", value: String(result.failed) },
    {
      measure: "requests sent again after a reset kept-alive connection",
      value: String(result.resent),
    },
    { measure: "evictions", value: String(result.evictions) },
    {
      measure: `max live sessions / CLI processes (bound ${settings.maxLiveSessions} / ${result.processBound})`,
      value: `${result.maxLiveSessions} / ${result.maxAgentProcesses}`,
    },
    {
      measure: "peak RSS: daemon + children / daemon alone",
      value: `${result.peakTotalRssMb} / ${result.peakDaemonRssMb} MB`,
    },
    {
      measure: "CPU per message: daemon + CLI / daemon alone",
      value: `${ms(result.cpu.perMessageMs)} / ${ms(result.cpu.daemonOnlyPerMessageMs)}`,
    },
    {
      measure: "machine busy (all processes, others' too)",
      value: `${Math.round(result.cpu.machineBusyShare * 100)}%`,
    },
    { measure: "GET /metrics (median)", value: ms(result.metricsScrapeMs.median) },
    ...profileRows(result.daemonProfile, { count: result.messages, unit: "message" }),
  ];
}

export const scale: Scenario<ScaleResult> = { name: "scale", run, rows };
