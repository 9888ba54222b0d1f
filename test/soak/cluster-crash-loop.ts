/**
 * The crash loop on a cluster (issue 14): N real daemons, each a node with its own HOME, on one
 * PostgreSQL database (a private server the loop starts and stops), one stand-in model. Contacts
 * send uniquely numbered messages, some in bursts that steer a running turn, each request to a
 * node picked at random among those running; a request a kill cuts is sent again, with the same
 * `message_id`, to another. Meanwhile a node picked at random is killed with SIGKILL, its whole
 * process group (the daemon and its agent CLIs: a machine loss); once the other nodes have taken
 * its chats over, it is started again on its HOME. At the end each contact's session is asked
 * which messages it holds, every node is stopped gracefully, the journal is read from the
 * database, and `judge` decides as for one daemon. Failover time is each `session-take-over`
 * line's time (logged by the node that took the session) minus the time of the kill it followed.
 * Used by `run-soak.ts` (`npm run soak -- --nodes 3`).
 */
import { setMaxListeners } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { startStandInModel } from "../../src/stand-in/model-server.js";
import { openPostgresDatabase } from "../../src/store/postgres/postgres-database.js";
import { createPostgresJournal } from "../../src/store/postgres/postgres-journal.js";
import { startCluster, type Cluster, type ClusterNode } from "../support/cluster.js";
import { createMemoryLogger } from "../support/memory-logger.js";
import {
  createDatabase,
  startPostgresServer,
  stopPostgresServer,
} from "../support/postgres-server.js";
import { startContact, type ContactRun, type DaemonEndpoint } from "./contact-client.js";
import {
  chatIdOf,
  contactName,
  contactsOf,
  readContext,
  tallyDaemonLog,
  tallyModelRequests,
  type CrashLoopDiagnostics,
  type CrashLoopOptions,
} from "./crash-loop.js";
import { failoverTimes, type NodeKill } from "./failover-times.js";
import { judge, type ContactEvidence, type Verdict } from "./judge.js";
import { createSeededRandom, type SeededRandom } from "./seeded-random.js";

export interface ClusterCrashLoopOptions extends Omit<CrashLoopOptions, "restarts" | "keepHome"> {
  /** How many nodes (at least 2: a killed node's chats need a node to go to). */
  nodes: number;
  /** Node kills, each of a node picked at random, started again once its chats moved. */
  kills: number;
  /** `cluster.leaseSeconds` of every node (3 to 30). */
  leaseSeconds: number;
  /**
   * An empty database to run on (a vitest file's `createTestDatabase()`); without it the loop
   * starts a private PostgreSQL server of its own and stops it at the end.
   */
  databaseUrl?: string;
}

export interface ClusterCrashLoopResult {
  seed: number;
  nodes: number;
  contacts: number;
  kills: NodeKill[];
  seconds: number;
  verdict: Verdict;
  diagnostics: CrashLoopDiagnostics;
  /** Per `session-take-over` after a kill: its time minus the kill's, in ms. */
  failoverMs: number[];
}

/** How long the other nodes get to take a killed node's chats over, beyond its lease. */
const TAKE_OVER_GRACE_MS = 60_000;
const PROGRESS_WAIT_MS = 90_000;
const PROGRESS_POLL_MS = 100;

export async function runClusterCrashLoop(
  options: ClusterCrashLoopOptions,
): Promise<ClusterCrashLoopResult> {
  if (options.nodes < 2) {
    throw new Error(`Expected at least 2 nodes for the cluster crash loop, got ${options.nodes}.`);
  }
  const startedAt = performance.now();
  const random = createSeededRandom(options.seed);
  const diagnostics: CrashLoopDiagnostics = {
    replayedAtStart: 0,
    recoveredFromTranscript: 0,
    reminded: 0,
    steered: 0,
    reasked: 0,
    retriedByClient: 0,
    unrecordedReplies: 0,
    modelRequests: 0,
  };
  const asked = new Map<string, number>();
  let folder: string | undefined;
  const deadline = new AbortController();
  setMaxListeners(0, deadline.signal);
  let server: Awaited<ReturnType<typeof startPostgresServer>> | undefined;
  let model: Awaited<ReturnType<typeof startStandInModel>> | undefined;
  let cluster: Cluster | undefined;
  try {
    let databaseUrl = options.databaseUrl;
    if (databaseUrl === undefined) {
      folder = await mkdtemp(path.join(tmpdir(), "dispatch-soak-pg-"));
      server = await startPostgresServer(folder);
      databaseUrl = await createDatabase(server);
    }
    model = await startStandInModel();
    const names = Array.from({ length: options.contacts }, (_unused, index) =>
      contactName(index + 1),
    );
    cluster = await startCluster({
      nodes: options.nodes,
      databaseUrl,
      modelUrl: model.url,
      contacts: contactsOf(names),
      config: { spareProcesses: 0, cluster: { leaseSeconds: options.leaseSeconds } },
    });
    const nodes = cluster;
    options.log(
      `cluster crash loop: seed ${options.seed}, ${options.nodes} nodes, ` +
        `${options.contacts} contacts, ${options.kills} node kills, lease ${options.leaseSeconds} s`,
    );

    let sending = true;
    const runs: ContactRun[] = [];
    const finished = names.map((contact, index) => {
      const contactRandom = createSeededRandom(options.seed + (index + 1) * 0x9e3779b9);
      const run = startContact({
        contact,
        chatId: chatIdOf(index + 1),
        endpoint: anyRunningNode(nodes, contactRandom),
        random: contactRandom,
        thinkMs: options.thinkMs,
        replyDelayMaxMs: options.replyDelayMaxMs,
        steering: options.steering,
        keepSending: () => sending,
        signal: deadline.signal,
      });
      runs.push(run.run);
      return run.done;
    });
    const answeredSoFar = () =>
      runs.reduce(
        (sum, run) => sum + run.messages.filter((message) => message.reply !== undefined).length,
        0,
      );

    const pause = (ms: number) =>
      sleep(ms, undefined, options.signal ? { signal: options.signal } : {});
    const kills: NodeKill[] = [];
    const problems: string[] = [];
    for (let kill = 1; kill <= options.kills; kill += 1) {
      const startedMs = performance.now();
      const answeredAtStart = answeredSoFar();
      await pause(random.between(options.killAfterMs.min, options.killAfterMs.max));
      // As for one daemon: each round must make progress, or only starting nodes die.
      if (answeredSoFar() === answeredAtStart) {
        while (
          answeredSoFar() === answeredAtStart &&
          performance.now() - startedMs < PROGRESS_WAIT_MS
        ) {
          await pause(PROGRESS_POLL_MS);
        }
        await pause(random.between(0, options.killAfterMs.min));
      }
      const running = nodes.running();
      const victim = running[random.between(0, running.length - 1)]!;
      const witness = running.find((node) => node !== victim)!;
      const held = await sessionsOf(witness, victim.id).catch(() => []);
      const waiting = runs.filter((run) => run.waiting).length;
      const group = victim.pid;
      const at = Date.now();
      await victim.kill();
      kills.push({ node: victim.id, at, sessions: held.length });
      tallyDaemonLog(victim.output(), diagnostics);
      tallyModelRequests(model, asked, diagnostics);
      options.log(
        `kill ${kill}/${options.kills}: ${victim.id} (process group ${group}) with ` +
          `${held.length} sessions, ${waiting} contacts waiting, ${answeredSoFar()} answered so far`,
      );
      // Its chats move before it comes back (a node started under its id would take them back).
      const moved = await chatsMovedFrom(witness, victim.id, options.leaseSeconds);
      if (!moved) {
        problems.push(
          `${victim.id}'s chats still named it ${options.leaseSeconds} s + ` +
            `${TAKE_OVER_GRACE_MS / 1000} s after kill ${kill}`,
        );
      }
      await victim.start();
      kills.at(-1)!.restartedAt = Date.now();
    }

    sending = false;
    const drain = setTimeout(() => deadline.abort(), options.drainMs);
    const contactRuns = await Promise.all(finished);
    clearTimeout(drain);
    options.log(`load done: ${answeredSoFar()} answered; reading each session's context back`);

    const contextRandom = createSeededRandom(options.seed ^ 0x5bd1e995);
    const contexts = await Promise.all(
      names.map((contact, index) =>
        readContext(anyRunningNode(nodes, contextRandom), contact, chatIdOf(index + 1)),
      ),
    );
    tallyModelRequests(model, asked, diagnostics);
    const loadEndedAt = Date.now();
    for (const node of nodes.running()) {
      const exitCode = await node.stop("SIGTERM");
      tallyDaemonLog(node.output(), diagnostics);
      if (exitCode !== 0) problems.push(`${node.id}'s graceful stop exited ${exitCode}`);
    }

    const failoverMs = failoverTimes(
      (await nodes.logLines("session-take-over")).filter(
        (line) => Date.parse(line.time) <= loadEndedAt,
      ),
      kills,
    );
    const journal = await readJournal(databaseUrl, contactRuns);
    const evidence: ContactEvidence[] = contactRuns.map((run, index) => ({
      contact: run.contact,
      messages: run.messages,
      journal,
      ...(contexts[index] ? { context: contexts[index] } : {}),
    }));
    const verdict = judge(evidence);
    verdict.problems.push(...problems);
    if (diagnostics.unrecordedReplies > 0) {
      verdict.problems.push(
        `the nodes logged ${diagnostics.unrecordedReplies} replies they could not record`,
      );
    }
    diagnostics.reasked = [...asked.values()].filter((count) => count > 1).length;
    diagnostics.retriedByClient = contactRuns
      .flatMap((run) => run.messages)
      .filter((message) => message.attempts > 1).length;
    diagnostics.steered = contactRuns
      .flatMap((run) => run.messages)
      .filter((message) => message.steered === true).length;
    return {
      seed: options.seed,
      nodes: options.nodes,
      contacts: options.contacts,
      kills,
      seconds: Math.round((performance.now() - startedAt) / 1000),
      verdict,
      diagnostics,
      failoverMs,
    };
  } finally {
    deadline.abort();
    await cluster?.stop();
    await model?.close();
    if (server) await stopPostgresServer(server.pid);
    if (folder) await rm(folder, { recursive: true, force: true });
  }
}

/** A request's node: one picked at random, for every attempt, among those running. */
function anyRunningNode(cluster: Cluster, random: SeededRandom): () => DaemonEndpoint {
  return () => {
    const running = cluster.running();
    // None running cannot last (a kill is followed by a start); the attempt fails and repeats.
    const node = running[random.between(0, running.length - 1)] ?? cluster.nodes[0]!;
    return { port: node.port, token: node.token };
  };
}

/** The session names `witness` says `nodeId` runs. */
async function sessionsOf(witness: ClusterNode, nodeId: string): Promise<string[]> {
  return (await witness.sessions())
    .filter((view) => view.node === nodeId)
    .map((view) => view.session_name);
}

/**
 * Waits until no session names `nodeId` as its node any more (the other nodes took its chats
 * over), for its lease plus a grace; resolves with whether that came.
 */
async function chatsMovedFrom(
  witness: ClusterNode,
  nodeId: string,
  leaseSeconds: number,
): Promise<boolean> {
  const until = Date.now() + leaseSeconds * 1000 + TAKE_OVER_GRACE_MS;
  while (Date.now() < until) {
    const held = await sessionsOf(witness, nodeId).catch(() => undefined);
    if (held?.length === 0) return true;
    await sleep(250);
  }
  return false;
}

/** Each message's journal row after the run, by marker (the HTTP `message_id`), from PostgreSQL. */
async function readJournal(
  url: string,
  runs: readonly ContactRun[],
): Promise<Map<string, { status: string }>> {
  const database = await openPostgresDatabase({ url, logger: createMemoryLogger() });
  const journal = createPostgresJournal({ database });
  try {
    const rows = new Map<string, { status: string }>();
    for (const message of runs.flatMap((run) => run.messages)) {
      const row = await journal.findByExternalId("http", message.marker);
      if (row) rows.set(message.marker, { status: row.status });
    }
    return rows;
  } finally {
    // It closes the database too.
    await journal.close();
  }
}
