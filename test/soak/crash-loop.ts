/**
 * The crash loop: many contacts send uniquely numbered messages over the HTTP API, now and then
 * a burst that steers a running turn, while the real daemon is killed with SIGKILL at random
 * moments and started again on the same home. At the end
 * each contact's session is asked which messages it holds (`[[markers]]`), the daemon is stopped,
 * its journal read, and `judge` decides whether every message was answered exactly once, in
 * order. Used by `run-soak.ts` (`npm run soak`) and, short, by `test/e2e/crash-loop.test.ts`.
 */
import { setMaxListeners } from "node:events";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { createMemoryLogger } from "../support/memory-logger.js";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { openStateDatabase } from "../../src/store/sqlite-database.js";
import { createSqliteJournal } from "../../src/store/sqlite-journal.js";
import { freePort, startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { makeTempHome } from "../support/real-manager.js";
import {
  startContact,
  sendUntilAnswered,
  type ContactRun,
  type DaemonEndpoint,
  type EndpointChoice,
  type Range,
  type Steering,
} from "./contact-client.js";
import { judge, type ContactEvidence, type ContextEvidence, type Verdict } from "./judge.js";
import { createSeededRandom } from "./seeded-random.js";

export interface CrashLoopOptions {
  /** SIGKILLs, each followed by a start on the same home. */
  restarts: number;
  contacts: number;
  seed: number;
  /**
   * How long the daemon runs, from answering `/healthz`, before it is killed; longer when it has
   * answered nothing by then (see `PROGRESS_WAIT_MS`).
   */
  killAfterMs: Range;
  /** A contact's pause between a reply and its next message. */
  thinkMs: Range;
  /** Each message asks the stand-in for a `[[delay]]` up to this, so kills land mid-turn. */
  replyDelayMaxMs: number;
  /** Bursts of messages that steer a running turn (`contact-client.ts`). */
  steering: Steering;
  /** After the last start: how long the contacts get to have their last messages answered. */
  drainMs: number;
  /** Keeps the temporary home (journal, logs' state) for a look after the run. */
  keepHome?: boolean;
  /** Ends the run early (Ctrl-C): the daemon is stopped and the home removed, nothing judged. */
  signal?: AbortSignal;
  log(line: string): void;
}

export interface CrashLoopDiagnostics {
  /** Messages the daemon replayed from its journal at a start. */
  replayedAtStart: number;
  /** Replayed messages answered from the agent's transcript (answered before a kill). */
  recoveredFromTranscript: number;
  /**
   * Replayed messages its session's context held without an answer, asked for with a reminder
   * instead of being given again.
   */
  reminded: number;
  /** Messages sent while the turn of the one before ran, steering it. */
  steered: number;
  /** Messages the model was asked more than once (a kill interrupted the turn). */
  reasked: number;
  /** Messages whose client had to send them more than once. */
  retriedByClient: number;
  /** Lines where the daemon could not record a reply (`reply-record-failed`). */
  unrecordedReplies: number;
  /** Conversation turns the model served. */
  modelRequests: number;
}

export interface CrashLoopResult {
  seed: number;
  contacts: number;
  restarts: number;
  seconds: number;
  verdict: Verdict;
  diagnostics: CrashLoopDiagnostics;
  /** Set when `keepHome` kept it. */
  home?: string;
}

const MARKERS_REPLY = /Markers said: (.*?)\. Markers answered: (.*?)\./;
const MARKER = /\b[a-z]+\d+-m\d+\b/gi;
/** The stand-in's list of the messages a reply answers (`compose-reply.ts`). */
const ANSWERING = / Answering ([^.]*)\.$/;
/** The longest a daemon runs without answering anything before it is killed all the same. */
const PROGRESS_WAIT_MS = 90_000;
const PROGRESS_POLL_MS = 100;
/** How long reading one session's context back may take. */
const CONTEXT_DEADLINE_MS = 120_000;

export function contactName(index: number): string {
  return `c${String(index).padStart(2, "0")}`;
}

/** A distinct US number per contact, as the contacts file and the API take it. */
export function chatIdOf(index: number): string {
  return `+1555${String(2_000_000 + index)}`;
}

export async function runCrashLoop(options: CrashLoopOptions): Promise<CrashLoopResult> {
  const startedAt = performance.now();
  const random = createSeededRandom(options.seed);
  const model = await startStandInModel();
  const home = await makeTempHome();
  const asked = new Map<string, number>();
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
  let daemon: DaemonProcess | undefined;
  const deadline = new AbortController();
  // Every contact's request and pause listens to it at once.
  setMaxListeners(0, deadline.signal);
  try {
    const names = Array.from({ length: options.contacts }, (_unused, index) =>
      contactName(index + 1),
    );
    await writeContacts(home.home, names);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: home.home,
      DISPATCH_PORT: String(await freePort()),
      ANTHROPIC_BASE_URL: model.url,
      ANTHROPIC_API_KEY: "test-key",
    };
    daemon = await startDaemonProcess(env);
    const endpoint: DaemonEndpoint = { port: daemon.port, token: daemon.token };
    options.log(
      `crash loop: seed ${options.seed}, ${options.contacts} contacts, ` +
        `${options.restarts} SIGKILL restarts, home ${home.home}`,
    );

    let sending = true;
    const runs: ContactRun[] = [];
    const finished = names.map((contact, index) => {
      const run = startContact({
        contact,
        chatId: chatIdOf(index + 1),
        endpoint,
        // One stream per contact, so each contact's choices follow from the seed alone.
        random: createSeededRandom(options.seed + (index + 1) * 0x9e3779b9),
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
    for (let restart = 1; restart <= options.restarts; restart += 1) {
      const startedMs = performance.now();
      const answeredAtStart = answeredSoFar();
      await pause(random.between(options.killAfterMs.min, options.killAfterMs.max));
      // A busy machine may not answer anything that soon: each run must make progress, or the
      // loop only ever kills daemons that are starting. So the kill waits for one answer since
      // the start (bounded), then comes at a random moment shortly after.
      if (answeredSoFar() === answeredAtStart) {
        while (
          answeredSoFar() === answeredAtStart &&
          performance.now() - startedMs < PROGRESS_WAIT_MS
        ) {
          await pause(PROGRESS_POLL_MS);
        }
        await pause(random.between(0, options.killAfterMs.min));
      }
      const runMs = Math.round(performance.now() - startedMs);
      const waiting = runs.filter((run) => run.waiting).length;
      const pid = daemon.pid;
      await daemon.stop("SIGKILL");
      await keepLog(options, home.home, restart, daemon, diagnostics);
      tallyModelRequests(model, asked, diagnostics);
      options.log(
        `kill ${restart}/${options.restarts}: pid ${pid} after ${runMs} ms, ` +
          `${waiting} contacts waiting, ${answeredSoFar()} answered so far`,
      );
      daemon = await startDaemonProcess(env);
    }

    sending = false;
    const drain = setTimeout(() => deadline.abort(), options.drainMs);
    const contactRuns = await Promise.all(finished);
    clearTimeout(drain);
    options.log(`load done: ${answeredSoFar()} answered; reading each session's context back`);

    const contexts = await Promise.all(
      names.map((contact, index) => readContext(endpoint, contact, chatIdOf(index + 1))),
    );
    tallyModelRequests(model, asked, diagnostics);
    const exitCode = await daemon.stop("SIGTERM");
    await keepLog(options, home.home, options.restarts + 1, daemon, diagnostics);
    daemon = undefined;

    const journal = await readJournal(home.home, contactRuns);
    const evidence: ContactEvidence[] = contactRuns.map((run, index) => ({
      contact: run.contact,
      messages: run.messages,
      journal,
      ...(contexts[index] ? { context: contexts[index] } : {}),
    }));
    const verdict = judge(evidence);
    if (exitCode !== 0) verdict.problems.push(`the daemon's graceful stop exited ${exitCode}`);
    if (diagnostics.unrecordedReplies > 0) {
      verdict.problems.push(
        `the daemon logged ${diagnostics.unrecordedReplies} replies it could not record`,
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
      contacts: options.contacts,
      restarts: options.restarts,
      seconds: Math.round((performance.now() - startedAt) / 1000),
      verdict,
      diagnostics,
      ...(options.keepHome ? { home: home.home } : {}),
    };
  } finally {
    deadline.abort();
    // Ended early: a graceful stop ends the agent processes too, while the model still answers.
    if (daemon) await daemon.stop("SIGTERM");
    await model.close();
    if (!options.keepHome) await home.remove();
  }
}

async function writeContacts(home: string, names: readonly string[]): Promise<void> {
  const folder = path.join(home, "dispatch");
  await mkdir(folder, { recursive: true });
  await writeFile(path.join(folder, "contacts.json"), JSON.stringify(contactsOf(names), null, 2));
}

/** The contacts file of the soak's contacts (`c01`, ...), each a favorite with one number. */
export function contactsOf(names: readonly string[]): { contacts: unknown[] } {
  const contacts = names.map((name, index) => ({
    name: `Soak Contact ${name}`,
    tier: "favorite",
    handles: [chatIdOf(index + 1)],
  }));
  return { contacts };
}

/** Asks the contact's session which markers its context holds (`[[markers]]`). */
export async function readContext(
  endpoint: EndpointChoice,
  contact: string,
  chatId: string,
): Promise<ContextEvidence | undefined> {
  const outcome = await sendUntilAnswered(
    {
      endpoint,
      random: createSeededRandom(0),
      signal: AbortSignal.timeout(CONTEXT_DEADLINE_MS),
    },
    { chat_id: chatId, text: "[[markers]]", message_id: `${contact}-context`, wait: true },
  );
  const match = MARKERS_REPLY.exec(outcome.reply ?? "");
  if (!match) return undefined;
  const markers = (list: string | undefined) => (list === "(none)" ? [] : (list ?? "").split(" "));
  return { said: markers(match[1]), answered: markers(match[2]) };
}

/** Each message's journal row after the run, by marker (the HTTP `message_id`). */
async function readJournal(
  home: string,
  runs: readonly ContactRun[],
): Promise<Map<string, { status: string }>> {
  const db = openStateDatabase({
    path: path.join(home, "dispatch", "state", "journal.db"),
    logger: createMemoryLogger(),
  });
  const journal = createSqliteJournal({ db });
  try {
    const rows = new Map<string, { status: string }>();
    for (const message of runs.flatMap((run) => run.messages)) {
      const row = await journal.findByExternalId("http", message.marker);
      if (row) rows.set(message.marker, { status: row.status });
    }
    return rows;
  } finally {
    await journal.close();
  }
}

/** Tallies a finished daemon's log and, with `keepHome`, saves it there as `daemon-N.log`. */
async function keepLog(
  options: CrashLoopOptions,
  home: string,
  run: number,
  daemon: DaemonProcess,
  diagnostics: CrashLoopDiagnostics,
): Promise<void> {
  tallyDaemonLog(daemon.output(), diagnostics);
  if (options.keepHome) await writeFile(path.join(home, `daemon-${run}.log`), daemon.output());
}

export function tallyDaemonLog(output: string, diagnostics: CrashLoopDiagnostics): void {
  diagnostics.replayedAtStart += output.split('"msg":"message-replay"').length - 1;
  diagnostics.recoveredFromTranscript += output.split('"msg":"message-answer-recover"').length - 1;
  diagnostics.unrecordedReplies += output.split('"msg":"reply-record-failed"').length - 1;
  for (const line of output.split("\n")) {
    if (!line.includes('"msg":"message-remind"')) continue;
    const ids = (JSON.parse(line) as { ids?: unknown }).ids;
    diagnostics.reminded += Array.isArray(ids) ? ids.length : 1;
  }
}

/**
 * Counts, per marker, the conversation turns asked to answer it (the stand-in's reply names
 * them: `Answering ...`; several for a turn that steered messages joined, or after a reminder),
 * then lets the recorded requests go (a long soak would otherwise hold every conversation in
 * memory).
 */
export function tallyModelRequests(
  model: StandInModel,
  asked: Map<string, number>,
  diagnostics: CrashLoopDiagnostics,
): void {
  for (const request of model.mainRequests()) {
    diagnostics.modelRequests += 1;
    const answering = ANSWERING.exec(request.reply)?.[1] ?? "";
    for (const marker of new Set(answering.match(MARKER) ?? [])) {
      asked.set(marker, (asked.get(marker) ?? 0) + 1);
    }
  }
  model.requests.splice(0);
}
