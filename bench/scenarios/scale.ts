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
 *
 * Three variants (issue 14): `scale`, one embedded daemon (SQLite, the default); `scalePostgres`,
 * one daemon on a private PostgreSQL server; `scaleCluster`, three daemons on one PostgreSQL
 * database on this machine, each a node with its own HOME, port and `DISPATCH_NODE_ID`, the same
 * contacts.json, `maxLiveSessions` each, and the requests sent to them round-robin. Two cores
 * cannot show a speed-up; the cluster run shows where the work went (turns and sessions per
 * node), that every node's pool kept its bound (`GET /v1/nodes`, sampled every 2 s, and each
 * node's /metrics and CLI children) and each daemon's RSS at its peak.
 */
import { randomUUID } from "node:crypto";
import { metricTotal } from "../lib/daemon-api.js";
import {
  createBenchHome,
  startBenchDaemon,
  type BenchDaemon,
  type BenchHome,
} from "../lib/daemon.js";
import { BENCH_TIER } from "../lib/direct-sdk.js";
import { ownerAgreement } from "../lib/owner-agreement.js";
import { postgresFailure, startBenchPostgres, type BenchPostgres } from "../lib/postgres.js";
import { contactsFile, phoneNumber, registryFile } from "../lib/fixtures.js";
import { startBenchModel } from "../lib/model.js";
import {
  cpuMs,
  machineCpuTicks,
  mb,
  sampleTree,
  treeCpuMs,
  type TreeSampler,
} from "../lib/process-tree.js";
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
/** Longer than a node's lease listing for its views is kept (`src/cluster/chat-router.ts`). */
const OWNER_VIEWS_SETTLE_MS = 7_000;
/** The series of turns that ended in an error. */
const ERROR_TURNS = 'dispatch_turns_total{outcome="error"}';
/** How often `GET /v1/nodes` is read (from each node in turn): every node's pool and chats. */
const NODES_INTERVAL_MS = 2_000;

/** Where the daemons keep their state, and how many there are. */
export interface ScaleTopology {
  nodes: number;
  database: "embedded" | "postgresql";
}

/** One node's share of a run. */
export interface NodeScale {
  nodeId: string;
  /** Requests sent to it (round-robin), and those that failed. */
  requests: number;
  failed: number;
  /** Turns it ran (`dispatch_turns_total` over the run): where the agents worked. */
  turns: number;
  /** Of them, turns that ended in an error (`outcome="error"`). */
  errorTurns: number;
  /** Started sessions it names itself the owner of at the end (its own `GET /v1/sessions`). */
  sessionsAtEnd: number;
  /** Chats it held at the end (`GET /v1/nodes`' `chats`: its leases). */
  chatsAtEnd: number;
  /** The most chats it held (`GET /v1/nodes`' `chats`), over the samples. */
  maxChats: number;
  /** The most live sessions: by its /metrics (every 15 s) and its `GET /v1/nodes` pool (2 s). */
  maxLiveMetrics: number;
  maxLiveReported: number;
  /** `GET /v1/nodes`' pool total: its `maxLiveSessions`. */
  poolTotal: number;
  maxAgentProcesses: number;
  poolWithinBound: boolean;
  peakDaemonRssMb: number;
  peakTotalRssMb: number;
  /** This daemon's CPU alone (not its CLIs) per message of the run. */
  daemonCpuPerMessageMs: number;
}

interface TimelinePoint {
  atS: number;
  sent: number;
  answered: number;
  live: number;
  waiting: number;
  agentProcesses: number;
  totalRssMb: number;
  /** The largest daemon's own RSS. */
  daemonRssMb: number;
  /** With several nodes: each one's live sessions (its /metrics), CLIs and RSS. */
  perNode?: { nodeId: string; live: number; agentProcesses: number; daemonRssMb: number }[];
}

export interface ScaleResult {
  settings: ScaleSettings;
  topology: ScaleTopology;
  /** Per node; one entry for a single daemon. */
  nodes: NodeScale[];
  /**
   * Started chats (a session id in some node's view) whose owner (`node` of `GET /v1/sessions`)
   * one node names differently from another.
   */
  ownerViewsDisagree: number;
  /**
   * Chats never started (no session id in any node's view, so no node holds their lease) that
   * some node names an owner for, where `node` should be null.
   */
  unstartedWithOwner: number;
  /** Every PostgreSQL process's CPU per message, when the daemons ran on PostgreSQL. */
  serverCpuPerMessageMs?: number;
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
  /** Highest `dispatch_sessions_live` seen on one node (its /metrics, or its pool in /v1/nodes). */
  maxLiveSessions: number;
  maxWaitingChats: number;
  /** Highest number of Claude CLI children of one daemon (sampled every 250 ms). */
  maxAgentProcesses: number;
  /** maxLiveSessions live plus the spares a daemon may keep. */
  processBound: number;
  /** Every node's pool within its bound. */
  poolWithinBound: boolean;
  /** The whole machine's share: every daemon and its children, summed at each sample. */
  peakTotalRssMb: number;
  /** The largest daemon's own RSS at its peak. */
  peakDaemonRssMb: number;
  cpu: {
    daemonTreeS: number;
    perMessageMs: number;
    /** The daemon processes alone, without their CLI children. */
    daemonOnlyPerMessageMs: number;
    machineBusyShare: number;
  };
  /** Time to answer GET /metrics, which lists every registered chat. */
  metricsScrapeMs: Summary;
  timeline: TimelinePoint[];
  /** With `--profile`: the daemon's CPU while messages flowed. */
  daemonProfile?: ProfileSummary;
}

interface NodeView {
  node_id: string;
  pool: { live: number; total: number };
  chats: number;
}

interface RunningNode {
  nodeId: string;
  home: BenchHome;
  daemon: BenchDaemon;
  sampler: TreeSampler;
  requests: number;
  failed: number;
  maxLiveMetrics: number;
  maxWaiting: number;
  maxLiveReported: number;
  maxChats: number;
  poolTotal: number;
  turnsBefore: number;
  errorTurnsBefore: number;
  cpuBefore: number;
  treeCpuBefore: number;
}

/** PostgreSQL could not start here (not installed, say): the run is left out, not failed. */
class PostgresUnavailable extends Error {}

function nodeIdOf(index: number): string {
  return `bench-node-${index + 1}`;
}

async function run(context: BenchContext, topology: ScaleTopology): Promise<ScaleResult> {
  const settings = { ...(context.quick ? QUICK_SCALE : FULL_SCALE), ...context.scale };
  if (!Number.isInteger(settings.senders) || settings.senders > settings.registered) {
    throw new Error(
      `[bench] Expected \`--scale-senders\` to be a whole number up to ${settings.registered}, got \`${settings.senders}\``,
    );
  }
  const sends = schedule(settings);
  const onPostgres = topology.database === "postgresql";
  let server: BenchPostgres | undefined;
  if (onPostgres) {
    try {
      server = await startBenchPostgres();
    } catch (error) {
      throw new PostgresUnavailable(postgresFailure(error));
    }
  }
  const model = await startBenchModel().catch(async (error: unknown) => {
    await server?.stop();
    throw error;
  });
  const createdAt = new Date().toISOString();
  const nodes: RunningNode[] = [];
  const homes: BenchHome[] = [];
  const profile = topology.nodes === 1 ? profiling(context, "scale") : undefined;
  let window: ProfileWindow | undefined;
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
  let finished = false;
  try {
    const url = server ? await server.createDatabase() : undefined;
    // The first node imports sessions.json into the database; the others find its rows there.
    for (let index = 0; index < topology.nodes; index += 1) {
      homes.push(
        await createBenchHome({
          config: {
            maxLiveSessions: settings.maxLiveSessions,
            spareProcesses: settings.spareProcesses,
          },
          contacts: contactsFile(settings.registered, BENCH_TIER),
          ...(index === 0
            ? { registry: registryFile(settings.registered, BENCH_TIER, createdAt) }
            : {}),
        }),
      );
    }
    const start = async (index: number): Promise<RunningNode> => {
      const nodeId = nodeIdOf(index);
      const daemon = await startBenchDaemon({
        command: context.command,
        home: homes[index]!,
        modelUrl: model.url,
        ...(profile ? { nodeArgs: profile.nodeArgs } : {}),
        ...(url ? { env: { DISPATCH_DATABASE_URL: url, DISPATCH_NODE_ID: nodeId } } : {}),
      });
      return {
        nodeId: url ? nodeId : "",
        home: homes[index]!,
        daemon,
        sampler: sampleTree(daemon.pid, 250),
        requests: 0,
        failed: 0,
        maxLiveMetrics: 0,
        maxWaiting: 0,
        maxLiveReported: 0,
        maxChats: 0,
        poolTotal: 0,
        turnsBefore: 0,
        errorTurnsBefore: 0,
        cpuBefore: 0,
        treeCpuBefore: 0,
      };
    };
    nodes.push(await start(0));
    nodes.push(
      ...(await Promise.all(
        Array.from({ length: topology.nodes - 1 }, (_, offset) => start(offset + 1)),
      )),
    );
    // A node's id as it names itself (an embedded daemon's default: host name and port).
    const selfView = await nodes[0]!.daemon.getJson<NodeView[]>("/v1/nodes");
    if (!onPostgres) nodes[0]!.nodeId = selfView[0]?.node_id ?? "";
    context.log(
      `scale: ${sends.length} messages from ${settings.senders} of ${settings.registered} chats, ` +
        `~${settings.ratePerSecond}/s (sending takes ~${Math.round((sends.at(-1)?.dueMs ?? 0) / 1000)} s), ` +
        `${topology.nodes} ${topology.database} node(s), pool ${settings.maxLiveSessions} each`,
    );
    for (const node of nodes) {
      const metrics = await node.daemon.metrics();
      node.turnsBefore = metricTotal(metrics, "dispatch_turns_total");
      node.errorTurnsBefore = metrics.get(ERROR_TURNS) ?? 0;
      node.cpuBefore = await cpuMs(node.daemon.pid);
      node.treeCpuBefore = await treeCpuMs(node.daemon.pid);
    }
    const serverCpuBefore = server ? await server.cpuMs() : 0;
    const machineBefore = await machineCpuTicks();
    const started = performance.now();
    const startedUs = monotonicUs();

    let wakePollers: () => void = () => undefined;
    const pollersStopped = new Promise<void>((resolve) => (wakePollers = resolve));
    const metricsPoller = (async () => {
      while (!finished) {
        const perNode: { live: number; waiting: number }[] = [];
        for (const node of nodes) {
          const scrapeStarted = performance.now();
          const metrics = await node.daemon.metrics().catch((error: unknown) => {
            context.log(`scale: GET /metrics of ${node.nodeId} failed: ${String(error)}`);
            return new Map<string, number>();
          });
          scrapes.push(performance.now() - scrapeStarted);
          const live = metricTotal(metrics, "dispatch_sessions_live");
          const waiting = metricTotal(metrics, "dispatch_pool_waiting");
          node.maxLiveMetrics = Math.max(node.maxLiveMetrics, live);
          node.maxWaiting = Math.max(node.maxWaiting, waiting);
          perNode.push({ live, waiting });
        }
        const elapsedS = (performance.now() - started) / 1000;
        const peaks = nodes.map((node) => node.sampler.peaks());
        const point: TimelinePoint = {
          atS: Math.round(elapsedS),
          sent,
          answered,
          live: perNode.reduce((sum, node) => sum + node.live, 0),
          waiting: perNode.reduce((sum, node) => sum + node.waiting, 0),
          agentProcesses: peaks.reduce((sum, peak) => sum + peak.lastAgentProcesses, 0),
          totalRssMb: mb(peaks.reduce((sum, peak) => sum + peak.lastTotalRssKb, 0)),
          daemonRssMb: mb(Math.max(...peaks.map((peak) => peak.lastRootRssKb))),
          ...(nodes.length > 1
            ? {
                perNode: nodes.map((node, index) => ({
                  nodeId: node.nodeId,
                  live: perNode[index]!.live,
                  agentProcesses: peaks[index]!.lastAgentProcesses,
                  daemonRssMb: mb(peaks[index]!.lastRootRssKb),
                })),
              }
            : {}),
        };
        timeline.push(point);
        model.forget(); // recorded bodies add up to hundreds of MB over a run
        const each =
          nodes.length > 1
            ? ` (${nodes.map((node, index) => `${node.nodeId}: ${perNode[index]!.live} live, ${mb(peaks[index]!.lastRootRssKb)} MB`).join("; ")})`
            : "";
        context.log(
          `scale: ${point.atS} s, ${sent} sent, ${answered} answered, ${point.live} live, ` +
            `${point.waiting} waiting for a slot, daemon ${point.daemonRssMb} MB${each}`,
        );
        await Promise.race([sleep(SCRAPE_INTERVAL_MS), pollersStopped]);
      }
    })();
    const nodesPoller = (async () => {
      for (let asked = 0; !finished; asked += 1) {
        const asking = nodes[asked % nodes.length]!;
        const views = await asking.daemon
          .getJson<NodeView[]>("/v1/nodes")
          .catch((error: unknown) => {
            context.log(`scale: GET /v1/nodes of ${asking.nodeId} failed: ${String(error)}`);
            return [];
          });
        for (const view of views) {
          const node = nodes.find((candidate) => candidate.nodeId === view.node_id);
          if (!node) continue;
          node.maxLiveReported = Math.max(node.maxLiveReported, view.pool.live);
          node.maxChats = Math.max(node.maxChats, view.chats);
          node.poolTotal = view.pool.total;
        }
        await Promise.race([sleep(NODES_INTERVAL_MS), pollersStopped]);
      }
    })();

    const pending: Promise<void>[] = [];
    for (const [index, send] of sends.entries()) {
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
      const node = nodes[index % nodes.length]!; // round-robin
      node.requests += 1;
      pending.push(
        node.daemon
          .post(phoneNumber(send.chat), `scale ${randomUUID().slice(0, 8)}`)
          .then((outcome) => {
            inFlight -= 1;
            slotFreed?.();
            resent += outcome.resent;
            if (outcome.ok) {
              answered += 1;
              latencies.push(outcome.elapsedMs);
            } else {
              node.failed += 1;
              const reason = outcome.error?.split(":")[0] ?? `status ${outcome.status}`;
              failures[reason] = (failures[reason] ?? 0) + 1;
              if (failureExamples.length < 5) {
                failureExamples.push(
                  `${node.nodeId} ${phoneNumber(send.chat)}: ${outcome.error ?? reason}`,
                );
              }
            }
          }),
      );
    }
    await Promise.all(pending);
    const durationS = (performance.now() - started) / 1000;
    window = { fromUs: startedUs, toUs: monotonicUs() };
    finished = true;
    wakePollers();
    await Promise.all([metricsPoller, nodesPoller]);
    const machineAfter = await machineCpuTicks();
    const serverCpuMs = server ? (await server.cpuMs()) - serverCpuBefore : 0;
    // Every node's view of every chat's owner (`node`): in a cluster they must agree, once each
    // has read the leases again (a node reads every lease at most every 5 s, for its views).
    if (nodes.length > 1) await sleep(OWNER_VIEWS_SETTLE_MS);
    const views = await Promise.all(
      nodes.map((node) =>
        node.daemon.getJson<{ chat_id: string; node: string | null; session_id: string | null }[]>(
          "/v1/sessions",
        ),
      ),
    );
    const owners = ownerAgreement(views);
    const finalCounts = await nodes[0]!.daemon.getJson<NodeView[]>("/v1/nodes");
    const processBound = settings.maxLiveSessions + settings.spareProcesses;
    const perNode: NodeScale[] = [];
    let treeMs = 0;
    let daemonMs = 0;
    let evictions = 0;
    for (const [index, node] of nodes.entries()) {
      const metrics = await node.daemon.metrics();
      evictions += metricTotal(metrics, "dispatch_pool_evictions");
      node.maxLiveMetrics = Math.max(
        node.maxLiveMetrics,
        metricTotal(metrics, "dispatch_sessions_live"),
      );
      const nodeTree = (await treeCpuMs(node.daemon.pid)) - node.treeCpuBefore;
      const nodeDaemon = (await cpuMs(node.daemon.pid)) - node.cpuBefore;
      treeMs += nodeTree;
      daemonMs += nodeDaemon;
      const peaks = await node.sampler.stop();
      const maxLive = Math.max(node.maxLiveMetrics, node.maxLiveReported);
      // A session it runs has its id in this node's memory; a chat no node holds is left out.
      const owned = views[index]!.filter(
        (session) => session.node === node.nodeId && session.session_id !== null,
      );
      perNode.push({
        nodeId: node.nodeId,
        requests: node.requests,
        failed: node.failed,
        turns: metricTotal(metrics, "dispatch_turns_total") - node.turnsBefore,
        errorTurns: (metrics.get(ERROR_TURNS) ?? 0) - node.errorTurnsBefore,
        sessionsAtEnd: owned.length,
        chatsAtEnd: finalCounts.find((view) => view.node_id === node.nodeId)?.chats ?? 0,
        maxChats: node.maxChats,
        maxLiveMetrics: node.maxLiveMetrics,
        maxLiveReported: node.maxLiveReported,
        poolTotal: node.poolTotal,
        maxAgentProcesses: peaks.peakAgentProcesses,
        poolWithinBound:
          maxLive <= settings.maxLiveSessions && peaks.peakAgentProcesses <= processBound,
        peakDaemonRssMb: mb(peaks.peakRootRssKb),
        peakTotalRssMb: mb(peaks.peakTotalRssKb),
        daemonCpuPerMessageMs: round(nodeDaemon / sends.length, 0),
      });
    }
    const peakTotalRssMb = timeline.reduce(
      (peak, point) => Math.max(peak, point.totalRssMb),
      nodes.length === 1 ? (perNode[0]?.peakTotalRssMb ?? 0) : 0,
    );

    for (const node of nodes) await node.daemon.stop();
    const daemonProfile = profile
      ? await summarizeNewestProfile(profile.folder, window)
      : undefined;
    const failed = sends.length - answered;
    return {
      ...(daemonProfile ? { daemonProfile } : {}),
      settings,
      topology,
      nodes: perNode,
      ownerViewsDisagree: owners.disagree,
      unstartedWithOwner: owners.unstartedWithOwner,
      ...(server ? { serverCpuPerMessageMs: round(serverCpuMs / sends.length, 1) } : {}),
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
      evictions,
      maxLiveSessions: Math.max(
        ...perNode.map((node) => Math.max(node.maxLiveMetrics, node.maxLiveReported)),
      ),
      maxWaitingChats: Math.max(...nodes.map((node) => node.maxWaiting)),
      maxAgentProcesses: Math.max(...perNode.map((node) => node.maxAgentProcesses)),
      processBound,
      poolWithinBound: perNode.every((node) => node.poolWithinBound),
      peakTotalRssMb,
      peakDaemonRssMb: Math.max(...perNode.map((node) => node.peakDaemonRssMb)),
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
    for (const node of nodes) {
      await node.sampler.stop().catch(() => undefined);
      const stop = await node.daemon.stop();
      if (stop.leftover.length > 0) {
        context.log(
          `scale: ${stop.leftover.length} processes of ${node.nodeId} were left after SIGTERM (killed)`,
        );
      }
    }
    await model.close();
    if (server) await server.stop();
    for (const home of homes) await home.remove();
  }
}

function rows(result: ScaleResult | { skipped: string }): Row[] {
  if (!("settings" in result)) {
    return [{ measure: "PostgreSQL", value: `left out: ${result.skipped}` }];
  }
  const { settings, latencyMs, topology } = result;
  const several = topology.nodes > 1;
  return [
    {
      measure: `registered / senders / messages / pool${several ? " per node" : ""}`,
      value: `${settings.registered} / ${settings.senders} / ${result.messages} / ${settings.maxLiveSessions}`,
    },
    ...(topology.database === "embedded" && !several
      ? []
      : [
          {
            measure: "nodes / state",
            value: `${topology.nodes} / ${topology.database}${several ? ", requests round-robin" : ""}`,
          },
        ]),
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
      measure: `max live sessions / CLI processes${several ? " on one node" : ""} (bound ${settings.maxLiveSessions} / ${result.processBound})`,
      value: `${result.maxLiveSessions} / ${result.maxAgentProcesses}`,
    },
    {
      measure: several
        ? "peak RSS: every daemon + children / largest daemon alone"
        : "peak RSS: daemon + children / daemon alone",
      value: `${result.peakTotalRssMb} / ${result.peakDaemonRssMb} MB`,
    },
    {
      measure: `CPU per message: daemon${several ? "s" : ""} + CLI / daemon${several ? "s" : ""} alone`,
      value: `${ms(result.cpu.perMessageMs)} / ${ms(result.cpu.daemonOnlyPerMessageMs)}`,
    },
    ...(result.serverCpuPerMessageMs === undefined
      ? []
      : [
          {
            measure: "PostgreSQL server CPU per message",
            value: ms(result.serverCpuPerMessageMs),
          },
        ]),
    {
      measure: "machine busy (all processes, others' too)",
      value: `${Math.round(result.cpu.machineBusyShare * 100)}%`,
    },
    { measure: "GET /metrics (median)", value: ms(result.metricsScrapeMs.median) },
    ...(several
      ? [
          {
            measure: "started chats whose owner two nodes name differently (GET /v1/sessions)",
            value: String(result.ownerViewsDisagree),
          },
          {
            measure: "chats never started that a node names an owner for (should be null)",
            value: String(result.unstartedWithOwner),
          },
        ]
      : []),
    ...(several || topology.database === "postgresql"
      ? result.nodes.flatMap((node) => [
          {
            measure: `${node.nodeId}: requests sent to it (failed) / turns it ran (in error)`,
            value: `${node.requests} (${node.failed}) / ${node.turns} (${node.errorTurns})`,
          },
          {
            measure: `${node.nodeId}: sessions it runs at the end (/v1/sessions) / chats held at the end, most (/v1/nodes)`,
            value: `${node.sessionsAtEnd} / ${node.chatsAtEnd}, ${node.maxChats}`,
          },
          {
            measure: `${node.nodeId}: most live by /metrics, by /v1/nodes (pool) / most CLIs / peak RSS`,
            value:
              `${node.maxLiveMetrics}, ${node.maxLiveReported} (of ${node.poolTotal}) / ` +
              `${node.maxAgentProcesses} / ${node.peakDaemonRssMb} MB`,
          },
        ])
      : []),
    ...profileRows(result.daemonProfile, { count: result.messages, unit: "message" }),
  ];
}

/** A scale run on PostgreSQL, or why it was left out (no PostgreSQL installed). */
async function runOnPostgres(
  context: BenchContext,
  nodes: number,
): Promise<ScaleResult | { skipped: string }> {
  try {
    return await run(context, { nodes, database: "postgresql" });
  } catch (error) {
    if (!(error instanceof PostgresUnavailable)) throw error;
    context.log(`scale on PostgreSQL left out: ${error.message}`);
    return { skipped: error.message };
  }
}

export const scale: Scenario<ScaleResult | { skipped: string }> = {
  name: "scale",
  run: (context) => run(context, { nodes: 1, database: "embedded" }),
  rows,
};

export const scalePostgres: Scenario<ScaleResult | { skipped: string }> = {
  name: "scalePostgres",
  run: (context) => runOnPostgres(context, 1),
  rows,
};

export const scaleCluster: Scenario<ScaleResult | { skipped: string }> = {
  name: "scaleCluster",
  run: (context) => runOnPostgres(context, 3),
  rows,
};
