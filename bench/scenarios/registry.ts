/**
 * Registry: what updates cost a registry of 10,000 chats (openJsonFileRegistry directly, as the
 * daemon opens it, with its default windows). Each write is the whole file, fsynced (file and
 * folder), so the figures that matter are how many writes the updates turn into (coalescing)
 * and what one write costs at this size, against one at 100 chats.
 *
 * - burst: 1,000 bookkeeping updates (turns, time, channel) in one go, then `flush()`;
 * - paced: the same 1,000 spread evenly over a few seconds, as messages arrive in the scale run:
 *   bookkeeping waits up to 5 s for company, so this is a write or two;
 * - new session ids: 100 spread over the same time, each written within 25 ms (a resume depends
 *   on it), so each is a write of its own: what one write costs at this size.
 */
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { asChatId, newAgentSessionId } from "../../src/utils/ids.js";
import { createLogger } from "../../src/logging/logger.js";
import { openJsonFileRegistry, type JsonFileRegistry } from "../../src/store/json-file-registry.js";
import { BENCH_TIER } from "../lib/direct-sdk.js";
import { phoneNumber, registryFile } from "../lib/fixtures.js";
import { ms, sleep, type BenchContext, type Row, type Scenario } from "../lib/scenario.js";
import { round } from "../lib/stats.js";

const ENTRIES = 10_000;
const UPDATES = 1_000;
const SESSION_ID_CHANGES = 100;
const SMALL_ENTRIES = 100;

export interface UpdateRun {
  updates: number;
  /** Registry file writes (each: temp file, fsync, rename, folder fsync). */
  writes: number;
  /** From the first update until `flush()` resolved. */
  elapsedMs: number;
  /** CPU of this process meanwhile (serialising, sorting; the fsync wait is not CPU). */
  cpuMs: number;
  /** CPU of this process per registry write (all of it, the updates' own share included). */
  cpuPerWriteMs: number;
  /** Wall time of one write (serialise, write, fsync, rename, folder fsync). */
  meanWriteMs: number;
}

export interface RegistryResult {
  entries: number;
  fileKb: number;
  openMs: number;
  /** CPU of this process while opening (read, parse, validate, last-good copy). */
  openCpuMs: number;
  burst: UpdateRun;
  paced: UpdateRun & { spreadMs: number };
  /** Session-id changes, each its own prompt write: the cost of one write at this size. */
  sessionIds: UpdateRun & { spreadMs: number };
  /** The same session-id changes against a registry of 100 chats: how a write grows with size. */
  smallRegistry: { entries: number; sessionIds: UpdateRun };
}

type Change = "bookkeeping" | "session-id";

async function openWith(entries: number) {
  const folder = await mkdtemp(path.join(os.tmpdir(), "dispatch-bench-registry-"));
  const file = path.join(folder, "sessions.json");
  await writeFile(
    file,
    JSON.stringify(registryFile(entries, BENCH_TIER, new Date().toISOString()), null, 2),
  );
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const registry = await openJsonFileRegistry({
    path: file,
    logger: createLogger({ level: "silent" }),
  });
  const cpu = process.cpuUsage(cpuBefore);
  return {
    registry,
    file,
    openMs: performance.now() - started,
    openCpuMs: (cpu.user + cpu.system) / 1000,
    remove: async () => {
      await registry.close();
      await rm(folder, { recursive: true, force: true });
    },
  };
}

/** Applies `updates` changes (one chat each, round the registry), `gapMs` apart when given. */
async function updateMany(
  registry: JsonFileRegistry,
  entries: number,
  updates: number,
  gapMs: number | undefined,
  change: Change = "bookkeeping",
): Promise<UpdateRun> {
  const writesBefore = registry.stats.writes;
  const writeMsBefore = registry.stats.totalWriteMs;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  for (let index = 0; index < updates; index += 1) {
    const chatId = asChatId(phoneNumber(index % entries));
    const entry = registry.get(chatId)!;
    if (change === "session-id") {
      registry.update(chatId, { session_id: newAgentSessionId() });
    } else {
      registry.update(chatId, {
        turns: entry.turns + 1,
        last_message_time: new Date().toISOString(),
        channel: "http",
      });
    }
    if (gapMs !== undefined) {
      // Hold the pace against the clock, not by adding up timer delays.
      const due = started + (index + 1) * gapMs;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
    }
  }
  await registry.flush();
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  const writes = registry.stats.writes - writesBefore;
  return {
    updates,
    writes,
    elapsedMs: round(elapsedMs),
    cpuMs: round((cpu.user + cpu.system) / 1000),
    cpuPerWriteMs: round((cpu.user + cpu.system) / 1000 / Math.max(1, writes), 1),
    meanWriteMs: round((registry.stats.totalWriteMs - writeMsBefore) / Math.max(1, writes), 2),
  };
}

async function run(context: BenchContext): Promise<RegistryResult> {
  const spreadMs = context.quick ? 2_000 : 5_000;
  const large = await openWith(ENTRIES);
  try {
    const burst = await updateMany(large.registry, ENTRIES, UPDATES, undefined);
    context.log(`registry: burst of ${UPDATES} -> ${burst.writes} writes`);
    const paced = await updateMany(large.registry, ENTRIES, UPDATES, spreadMs / UPDATES);
    context.log(`registry: ${UPDATES} over ${spreadMs} ms -> ${paced.writes} writes`);
    const gapMs = spreadMs / SESSION_ID_CHANGES;
    const sessionIds = await updateMany(
      large.registry,
      ENTRIES,
      SESSION_ID_CHANGES,
      gapMs,
      "session-id",
    );
    context.log(
      `registry: ${SESSION_ID_CHANGES} new session ids over ${spreadMs} ms -> ${sessionIds.writes} writes`,
    );
    const small = await openWith(SMALL_ENTRIES);
    let smallSessionIds: UpdateRun;
    try {
      smallSessionIds = await updateMany(
        small.registry,
        SMALL_ENTRIES,
        SESSION_ID_CHANGES,
        gapMs,
        "session-id",
      );
    } finally {
      await small.remove();
    }
    const fileKb = Math.round((await stat(large.file)).size / 1024);
    return {
      entries: ENTRIES,
      fileKb,
      openMs: round(large.openMs),
      openCpuMs: round(large.openCpuMs),
      burst,
      paced: { ...paced, spreadMs },
      sessionIds: { ...sessionIds, spreadMs },
      smallRegistry: { entries: SMALL_ENTRIES, sessionIds: smallSessionIds },
    };
  } finally {
    await large.remove();
  }
}

function rows(result: RegistryResult): Row[] {
  const { burst, paced, sessionIds, smallRegistry } = result;
  const small = smallRegistry.sessionIds;
  return [
    {
      measure: `open ${result.entries.toLocaleString("en-US")} entries (${result.fileKb} kB file): wall / CPU`,
      value: `${ms(result.openMs)} / ${ms(result.openCpuMs)}`,
    },
    {
      measure: `${burst.updates} bookkeeping updates at once: writes (fsynced) / time`,
      value: `${burst.writes} / ${ms(burst.elapsedMs)}`,
    },
    {
      measure: `${paced.updates} bookkeeping updates over ${paced.spreadMs / 1000} s: writes / CPU`,
      value: `${paced.writes} / ${ms(paced.cpuMs)}`,
    },
    {
      measure: `${sessionIds.updates} new session ids over ${sessionIds.spreadMs / 1000} s: writes / CPU`,
      value: `${sessionIds.writes} / ${ms(sessionIds.cpuMs)}`,
    },
    {
      measure: `one write, ${result.entries.toLocaleString("en-US")} entries: CPU / wall`,
      value: `${ms(sessionIds.cpuPerWriteMs)} / ${ms(sessionIds.meanWriteMs)}`,
    },
    {
      measure: `one write, ${smallRegistry.entries} entries: CPU / wall`,
      value: `${ms(small.cpuPerWriteMs)} / ${ms(small.meanWriteMs)}`,
    },
  ];
}

export const registry: Scenario<RegistryResult> = { name: "registry", run, rows };
