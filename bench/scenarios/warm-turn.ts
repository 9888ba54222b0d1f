/**
 * Warm turn: a message to a chat whose session is live, through the daemon (HTTP request sent
 * -> request at the model -> HTTP response) and the same turn pushed straight into a long-lived
 * SDK conversation (push -> request at the model -> `result`). Turns alternate between the two
 * paths, so background load falls on both alike.
 *
 * The ratio the issue sets a target for is the daemon's own time, from the message's arrival to
 * its reply leaving (the API's `Server-Timing` header), over the direct SDK's push -> result.
 * The same from the client's side, which adds the trip over loopback both ways, is reported
 * beside it. A third path, the SDK driven directly with a transcript store of its own (dispatch
 * mirrors every transcript into its journal), tells what the mirroring costs in the SDK and the
 * CLI apart from what dispatch's code costs.
 */
import { randomUUID } from "node:crypto";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { createBenchHome, startBenchDaemon } from "../lib/daemon.js";
import { BENCH_TIER, openDirectConversation, type DirectConversation } from "../lib/direct-sdk.js";
import { contactsFile, phoneNumber } from "../lib/fixtures.js";
import { startBenchModel, type BenchModel } from "../lib/model.js";
import { cpuMs, mainThreadCpuMs } from "../lib/process-tree.js";
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
import { round, roundSummary, summarize, type Summary } from "../lib/stats.js";

/** Two chats share the turns: the HTTP API allows 30 messages per chat per minute. */
export const CHATS = 2;
export const WARM_UPS_PER_PATH = 2;
export const PAUSE_BETWEEN_TURNS_MS = 100;

export interface PathTimes {
  /** Message sent (or pushed) until its request reached the model. */
  toModelMs: Summary;
  /** Request at the model until the reply was back with the caller. */
  afterModelMs: Summary;
  /** The whole turn, send to reply. */
  totalMs: Summary;
}

export interface DispatchTimes extends PathTimes {
  /** The daemon's own time: the request's arrival to its response (`Server-Timing`). */
  inDaemonMs: Summary;
}

export interface WarmTurnResult {
  turns: number;
  dispatch: DispatchTimes;
  direct: PathTimes;
  /** The direct SDK with an in-memory transcript store. */
  directMirrored: PathTimes;
  /**
   * The daemon's time (message accepted -> reply out) / the direct SDK's push -> result, at the
   * median and at p95: the measure.
   */
  ratio: { median: number; p95: number };
  /** The same with the client's send -> reply read, loopback trips included. */
  clientRatio: { median: number; p95: number };
  /** In the daemon / the direct SDK with a transcript store: what dispatch's own code adds. */
  mirroredRatio: { median: number; p95: number };
  /** What dispatch adds, in ms, at the median: in the daemon, and seen from the client. */
  overheadMedianMs: number;
  clientOverheadMedianMs: number;
  failed: number;
  /**
   * The daemon's CPU over the measured turns, per dispatch turn: its main thread's (the event
   * loop's, from the scheduler, ns-precise) and the whole process's (every thread, 10 ms ticks).
   */
  daemonCpuPerTurnMs?: { mainThread: number; process: number };
  /** With `--profile`: the daemon's CPU during the measured turns. */
  daemonProfile?: ProfileSummary;
}

export interface Sample {
  toModel: number;
  total: number;
  /** Dispatch only: the daemon's own part of `total`. */
  inDaemon?: number;
}

export function times(samples: Sample[]): PathTimes {
  return {
    toModelMs: roundSummary(summarize(samples.map((sample) => sample.toModel))),
    afterModelMs: roundSummary(summarize(samples.map((sample) => sample.total - sample.toModel))),
    totalMs: roundSummary(summarize(samples.map((sample) => sample.total))),
  };
}

export function marker(): string {
  return `bench-${randomUUID().slice(0, 8)}`;
}

export function arrival(model: BenchModel, tag: string, sentAt: number): number {
  const at = model.arrivalOf(tag);
  if (at === undefined) throw new Error(`[bench] The model never saw the message ${tag}`);
  return at - sentAt;
}

async function run(context: BenchContext): Promise<WarmTurnResult> {
  const turns = context.quick ? 10 : 60;
  const model = await startBenchModel();
  const home = await createBenchHome({
    config: { spareProcesses: 0, maxLiveSessions: 4 },
    contacts: contactsFile(CHATS, BENCH_TIER),
  });
  const profile = profiling(context, "warmTurn");
  const daemon = await startBenchDaemon({
    command: context.command,
    home,
    modelUrl: model.url,
    ...(profile ? { nodeArgs: profile.nodeArgs } : {}),
  });
  let window: ProfileWindow | undefined;
  const directFolder = path.join(home.home, "direct-sdk", "warm");
  await mkdir(directFolder, { recursive: true });
  const direct = openDirectConversation({ modelUrl: model.url, home: home.home }, directFolder);
  const mirroredFolder = path.join(home.home, "direct-sdk", "warm-mirrored");
  await mkdir(mirroredFolder, { recursive: true });
  const mirrored = openDirectConversation(
    { modelUrl: model.url, home: home.home, mirror: true },
    mirroredFolder,
  );
  let failed = 0;
  const stopDaemon = async () => {
    const stop = await daemon.stop();
    if (stop.leftover.length > 0) context.log(`warm turn: ${stop.leftover.length} processes left`);
  };
  try {
    const viaDispatch = async (turn: number): Promise<Sample | undefined> => {
      const tag = marker();
      const outcome = await daemon.post(phoneNumber(turn % CHATS), `warm turn ${turn} ${tag}`);
      if (!outcome.ok) {
        failed += 1;
        context.log(`warm turn through dispatch failed: ${outcome.error ?? outcome.status}`);
        return undefined;
      }
      if (outcome.daemonMs === undefined) {
        throw new Error("[bench] The daemon's reply had no Server-Timing header");
      }
      return {
        toModel: arrival(model, tag, outcome.sentAt),
        total: outcome.elapsedMs,
        inDaemon: outcome.daemonMs,
      };
    };
    const viaConversation =
      (conversation: DirectConversation) =>
      async (turn: number): Promise<Sample | undefined> => {
        const tag = marker();
        const result = await conversation.send(`warm turn ${turn} ${tag}`);
        if (result.isError) {
          failed += 1;
          return undefined;
        }
        return { toModel: arrival(model, tag, result.pushedAt), total: result.elapsedMs };
      };
    const viaSdk = viaConversation(direct);
    const viaMirrored = viaConversation(mirrored);

    context.log(`warm turn: starting ${CHATS} dispatch sessions and two SDK conversations`);
    for (let turn = 0; turn < CHATS; turn += 1) await viaDispatch(turn);
    await viaSdk(0);
    await viaMirrored(0);
    await sleep(1_000); // the first turn's title request and transcript writes settle
    for (let turn = 0; turn < WARM_UPS_PER_PATH * CHATS; turn += 1) {
      await viaDispatch(turn);
      await viaSdk(turn);
      await viaMirrored(turn);
    }
    failed = 0; // warm-up failures would show up again below

    const paths = [viaDispatch, viaSdk, viaMirrored];
    const samples = new Map(paths.map((path) => [path, [] as Sample[]]));
    const measuredFrom = monotonicUs();
    const mainThreadBefore = await mainThreadCpuMs(daemon.pid);
    const processBefore = await cpuMs(daemon.pid);
    for (let turn = 0; turn < turns; turn += 1) {
      // Rotate which path goes first, so none always runs right after another.
      const order = paths.map((_, index) => paths[(index + turn) % paths.length]!);
      for (const path of order) {
        const sample = await path(turn);
        await sleep(PAUSE_BETWEEN_TURNS_MS);
        if (sample) samples.get(path)!.push(sample);
      }
    }
    const dispatchSamples = samples.get(viaDispatch)!;
    window = { fromUs: measuredFrom, toUs: monotonicUs() };
    const mainThreadAfter = await mainThreadCpuMs(daemon.pid);
    const processAfter = await cpuMs(daemon.pid);
    const daemonCpuPerTurnMs =
      mainThreadBefore === undefined || mainThreadAfter === undefined
        ? undefined
        : {
            mainThread: round((mainThreadAfter - mainThreadBefore) / turns, 2),
            process: round((processAfter - processBefore) / turns, 2),
          };
    context.log(`warm turn: ${turns} turns on each path measured`);
    const dispatch: DispatchTimes = {
      ...times(dispatchSamples),
      inDaemonMs: roundSummary(summarize(dispatchSamples.map((sample) => sample.inDaemon ?? 0))),
    };
    const directTimes = times(samples.get(viaSdk)!);
    const mirroredTimes = times(samples.get(viaMirrored)!);
    await direct.close();
    await mirrored.close();
    await stopDaemon();
    const daemonProfile = profile
      ? await summarizeNewestProfile(profile.folder, window)
      : undefined;
    return {
      ...(daemonProfile ? { daemonProfile } : {}),
      ...(daemonCpuPerTurnMs ? { daemonCpuPerTurnMs } : {}),
      turns,
      dispatch,
      direct: directTimes,
      directMirrored: mirroredTimes,
      ratio: {
        median: round(dispatch.inDaemonMs.median / directTimes.totalMs.median, 3),
        p95: round(dispatch.inDaemonMs.p95 / directTimes.totalMs.p95, 3),
      },
      clientRatio: {
        median: round(dispatch.totalMs.median / directTimes.totalMs.median, 3),
        p95: round(dispatch.totalMs.p95 / directTimes.totalMs.p95, 3),
      },
      mirroredRatio: {
        median: round(dispatch.inDaemonMs.median / mirroredTimes.totalMs.median, 3),
        p95: round(dispatch.inDaemonMs.p95 / mirroredTimes.totalMs.p95, 3),
      },
      overheadMedianMs: round(dispatch.inDaemonMs.median - directTimes.totalMs.median),
      clientOverheadMedianMs: round(dispatch.totalMs.median - directTimes.totalMs.median),
      failed,
    };
  } finally {
    await direct.close();
    await mirrored.close();
    await stopDaemon();
    await model.close();
    await home.remove();
  }
}

function rows(result: WarmTurnResult): Row[] {
  const { dispatch, direct } = result;
  return [
    {
      measure: `dispatch: sent -> at model (median / p95)`,
      value: `${ms(dispatch.toModelMs.median)} / ${ms(dispatch.toModelMs.p95)}`,
    },
    {
      measure: `dispatch: sent -> reply (median / p95)`,
      value: `${ms(dispatch.totalMs.median)} / ${ms(dispatch.totalMs.p95)}`,
    },
    {
      measure: `dispatch: accepted -> reply out, in the daemon (median / p95)`,
      value: `${ms(dispatch.inDaemonMs.median)} / ${ms(dispatch.inDaemonMs.p95)}`,
    },
    {
      measure: `direct SDK: push -> at model (median / p95)`,
      value: `${ms(direct.toModelMs.median)} / ${ms(direct.toModelMs.p95)}`,
    },
    {
      measure: `direct SDK: push -> result (median / p95)`,
      value: `${ms(direct.totalMs.median)} / ${ms(direct.totalMs.p95)}`,
    },
    {
      measure: `direct SDK with a transcript store: push -> result (median / p95)`,
      value: `${ms(result.directMirrored.totalMs.median)} / ${ms(result.directMirrored.totalMs.p95)}`,
    },
    {
      measure: `ratio in the daemon / direct (median / p95), ${result.turns} turns`,
      value: `${result.ratio.median.toFixed(2)} / ${result.ratio.p95.toFixed(2)}`,
    },
    {
      measure: `ratio seen from the client / direct (median / p95)`,
      value: `${result.clientRatio.median.toFixed(2)} / ${result.clientRatio.p95.toFixed(2)}`,
    },
    {
      measure: `ratio in the daemon / direct with a transcript store (median / p95)`,
      value: `${result.mirroredRatio.median.toFixed(2)} / ${result.mirroredRatio.p95.toFixed(2)}`,
    },
    { measure: "failed turns", value: String(result.failed) },
    ...(result.daemonCpuPerTurnMs
      ? [
          {
            measure: "daemon CPU per dispatch turn: main thread / whole process",
            value: `${result.daemonCpuPerTurnMs.mainThread} ms / ${result.daemonCpuPerTurnMs.process} ms`,
          },
        ]
      : []),
    ...profileRows(result.daemonProfile, { count: result.turns, unit: "dispatch turn" }),
  ];
}

export const warmTurn: Scenario<WarmTurnResult> = { name: "warmTurn", run, rows };
