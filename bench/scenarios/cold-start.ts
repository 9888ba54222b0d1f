/**
 * Cold first reply: the first message of a chat with no live session, three ways.
 *
 * - plain: a new chat, no spare process (`spareProcesses: 0`): the CLI boots for the message;
 * - resumed: a chat that spoke before a daemon restart (SIGTERM, start again): resume by id;
 * - spare: a new chat claiming a prewarmed spare (`spareProcesses: 1`), measured through the
 *   daemon when it keeps spares, else with the SDK's `prewarm()` directly.
 *
 * The same three are measured with the SDK directly, as the floor dispatch can reach. Before
 * each sample the machine is left to settle (title requests, a spare being refilled).
 */
import { randomUUID } from "node:crypto";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { createBenchHome, startBenchDaemon, type BenchDaemon } from "../lib/daemon.js";
import {
  BENCH_TIER,
  openDirectConversation,
  prewarmDirectSpare,
  type DirectSdkContext,
} from "../lib/direct-sdk.js";
import { contactsFile, phoneNumber } from "../lib/fixtures.js";
import { startBenchModel, type BenchModel } from "../lib/model.js";
import { treeCpuMs, waitForQuiet } from "../lib/process-tree.js";
import { ms, sleep, type BenchContext, type Row, type Scenario } from "../lib/scenario.js";
import { round, roundSummary, summarize, type Summary } from "../lib/stats.js";

export interface ColdTimes {
  /** Send (or query()) until the request reached the model. */
  toModelMs: Summary;
  /** Send until the reply (or `result`). */
  totalMs: Summary;
}

export interface ColdStartResult {
  samples: number;
  dispatch: {
    plain: ColdTimes;
    resumed: ColdTimes;
    /** Null when the daemon keeps no spare processes. */
    spare: ColdTimes | null;
    /** CPU of the daemon and its CLI child per plain first reply (boot, turn, title request). */
    cpuPerPlainStartMs: number;
  };
  direct: { plain: ColdTimes; resumed: ColdTimes; prewarmed: ColdTimes };
  /** Whose spare figure the target uses. */
  spareMeasuredBy: "daemon" | "direct SDK prewarm()";
}

interface Sample {
  toModel: number;
  total: number;
}

function coldTimes(samples: Sample[]): ColdTimes {
  return {
    toModelMs: roundSummary(summarize(samples.map((sample) => sample.toModel))),
    totalMs: roundSummary(summarize(samples.map((sample) => sample.total))),
  };
}

function marker(): string {
  return `cold-${randomUUID().slice(0, 8)}`;
}

async function firstReply(daemon: BenchDaemon, model: BenchModel, chat: number): Promise<Sample> {
  const tag = marker();
  const outcome = await daemon.post(phoneNumber(chat), `first message ${tag}`);
  if (!outcome.ok) throw new Error(`[bench] cold first reply failed: ${outcome.error ?? ""}`);
  const at = model.arrivalOf(tag);
  return { toModel: at === undefined ? Number.NaN : at - outcome.sentAt, total: outcome.elapsedMs };
}

/** Waits until the daemon has more agent processes than live sessions: a parked spare. */
async function waitForSpare(daemon: BenchDaemon, liveSessions: number, timeoutMs: number) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if ((await daemon.agentProcesses()).length > liveSessions) return true;
    await sleep(200);
  }
  return false;
}

async function run(context: BenchContext): Promise<ColdStartResult> {
  const samples = context.quick ? 2 : 5;
  const model = await startBenchModel();
  // Chats 0..n-1 start plain and later resume; n..2n-1 claim spares; 2n shows whether spares exist.
  const home = await createBenchHome({
    config: { spareProcesses: 0, maxLiveSessions: 2 * samples + 4 },
    contacts: contactsFile(2 * samples + 1, BENCH_TIER),
  });
  const settle = (pid: number) => waitForQuiet(pid, { timeoutMs: 15_000 });
  try {
    // Plain starts.
    context.log("cold start: plain first replies (no spare)");
    let daemon = await startBenchDaemon({ command: context.command, home, modelUrl: model.url });
    const plain: Sample[] = [];
    const cpu: number[] = [];
    for (let chat = 0; chat < samples; chat += 1) {
      await settle(daemon.pid);
      const before = await treeCpuMs(daemon.pid);
      plain.push(await firstReply(daemon, model, chat));
      await settle(daemon.pid);
      cpu.push((await treeCpuMs(daemon.pid)) - before);
    }
    await daemon.stop();

    // Restart with one spare: the same chats resume, new chats may claim spares.
    context.log("cold start: daemon restarted; resumed first replies");
    await home.writeConfig({ spareProcesses: 1, maxLiveSessions: 2 * samples + 4 });
    daemon = await startBenchDaemon({ command: context.command, home, modelUrl: model.url });
    const resumed: Sample[] = [];
    for (let chat = 0; chat < samples; chat += 1) {
      await settle(daemon.pid);
      resumed.push(await firstReply(daemon, model, chat));
    }
    await firstReply(daemon, model, 2 * samples); // gives the spare pool a profile to prewarm for
    let live = samples + 1;
    const spareSupported = await waitForSpare(daemon, live, 15_000);
    const spare: Sample[] = [];
    if (spareSupported) {
      context.log("cold start: first replies on prewarmed spares (through the daemon)");
      for (let chat = samples; chat < 2 * samples; chat += 1) {
        await waitForSpare(daemon, live, 15_000);
        await settle(daemon.pid);
        spare.push(await firstReply(daemon, model, chat));
        live += 1;
      }
    } else {
      context.log("cold start: the daemon keeps no spare processes; measuring prewarm() directly");
    }
    await daemon.stop();

    context.log("cold start: the same through the SDK directly");
    const direct = await measureDirect({ modelUrl: model.url, home: home.home }, model, samples);
    return {
      samples,
      dispatch: {
        plain: coldTimes(plain),
        resumed: coldTimes(resumed),
        spare: spareSupported ? coldTimes(spare) : null,
        cpuPerPlainStartMs: round(cpu.reduce((sum, value) => sum + value, 0) / cpu.length, 0),
      },
      direct,
      spareMeasuredBy: spareSupported ? "daemon" : "direct SDK prewarm()",
    };
  } finally {
    await model.close();
    await home.remove();
  }
}

async function measureDirect(
  sdk: DirectSdkContext,
  model: BenchModel,
  samples: number,
): Promise<ColdStartResult["direct"]> {
  const plain: Sample[] = [];
  const resumed: Sample[] = [];
  const prewarmed: Sample[] = [];
  const turn = async (send: (text: string) => Promise<{ pushedAt: number }>, started: number) => {
    const tag = marker();
    const result = await send(`first message ${tag}`);
    const elapsed = performance.now() - started;
    const at = model.arrivalOf(tag);
    return { toModel: at === undefined ? Number.NaN : at - result.pushedAt, total: elapsed };
  };
  for (let index = 0; index < samples; index += 1) {
    const folder = path.join(sdk.home, "direct-sdk", `cold-${index}`);
    await mkdir(folder, { recursive: true });

    await waitForQuiet(process.pid);
    let started = performance.now();
    const first = openDirectConversation(sdk, folder);
    plain.push(await turn((text) => first.send(text), started));
    await first.close();

    await waitForQuiet(process.pid);
    started = performance.now();
    const again = openDirectConversation(sdk, folder, {
      kind: "resume",
      sessionId: first.sessionId,
    });
    resumed.push(await turn((text) => again.send(text), started));
    await again.close();

    const spare = await prewarmDirectSpare(sdk);
    await waitForQuiet(process.pid);
    const spareFolder = path.join(sdk.home, "direct-sdk", `spare-${index}`);
    await mkdir(spareFolder, { recursive: true });
    started = performance.now();
    const claimed = spare.claim(spareFolder);
    prewarmed.push(await turn((text) => claimed.send(text), started));
    await claimed.close();
    await spare.close();
  }
  return { plain: coldTimes(plain), resumed: coldTimes(resumed), prewarmed: coldTimes(prewarmed) };
}

function rows(result: ColdStartResult): Row[] {
  const line = (label: string, times: ColdTimes | null): Row => ({
    measure: `${label} (median / p95, ${result.samples} samples)`,
    value: times ? `${ms(times.totalMs.median)} / ${ms(times.totalMs.p95)}` : "no spares",
  });
  return [
    line("dispatch: plain start, sent -> reply", result.dispatch.plain),
    line("dispatch: prewarmed spare, sent -> reply", result.dispatch.spare),
    line("dispatch: resumed after restart, sent -> reply", result.dispatch.resumed),
    line("direct SDK: plain query()", result.direct.plain),
    line("direct SDK: prewarm() then claim()", result.direct.prewarmed),
    line("direct SDK: query() with resume", result.direct.resumed),
    {
      measure: "CPU per plain first reply (daemon + CLI)",
      value: ms(result.dispatch.cpuPerPlainStartMs),
    },
  ];
}

export const coldStart: Scenario<ColdStartResult> = { name: "coldStart", run, rows };
