/**
 * Registry: what 1,000 updates cost a registry of 10,000 chats (openJsonFileRegistry directly,
 * as the daemon opens it). Each write is the whole file, fsynced (file and folder), so the
 * figures that matter are how many writes the updates turn into (coalescing) and what one
 * write costs at this size, against one at 100 chats.
 *
 * - burst: 1,000 updates in one go, then `flush()`: the coalescing bound;
 * - paced: the same 1,000 spread evenly over a few seconds, as messages arrive in the scale run.
 */
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { asChatId } from "../../src/core/ids.js";
import { createLogger } from "../../src/logging/logger.js";
import { openJsonFileRegistry, type JsonFileRegistry } from "../../src/store/json-file-registry.js";
import { BENCH_TIER } from "../lib/direct-sdk.js";
import { phoneNumber, registryFile } from "../lib/fixtures.js";
import { ms, sleep, type BenchContext, type Row, type Scenario } from "../lib/scenario.js";
import { round } from "../lib/stats.js";

const ENTRIES = 10_000;
const UPDATES = 1_000;
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
  burst: UpdateRun;
  paced: UpdateRun & { spreadMs: number };
  /** The same paced updates against a registry of 100 chats: how a write's cost grows with size. */
  smallRegistry: { entries: number; paced: UpdateRun };
}

async function openWith(entries: number) {
  const folder = await mkdtemp(path.join(os.tmpdir(), "dispatch-bench-registry-"));
  const file = path.join(folder, "sessions.json");
  await writeFile(
    file,
    JSON.stringify(registryFile(entries, BENCH_TIER, new Date().toISOString()), null, 2),
  );
  const started = performance.now();
  const registry = await openJsonFileRegistry({
    path: file,
    logger: createLogger({ level: "silent" }),
  });
  return {
    registry,
    file,
    openMs: performance.now() - started,
    remove: async () => {
      await registry.close();
      await rm(folder, { recursive: true, force: true });
    },
  };
}

/** Applies `updates` updates (one chat each, round the registry), `gapMs` apart when given. */
async function updateMany(
  registry: JsonFileRegistry,
  entries: number,
  updates: number,
  gapMs: number | undefined,
): Promise<UpdateRun> {
  const writesBefore = registry.stats.writes;
  const writeMsBefore = registry.stats.totalWriteMs;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  for (let index = 0; index < updates; index += 1) {
    const chatId = asChatId(phoneNumber(index % entries));
    const entry = registry.get(chatId)!;
    registry.update(chatId, {
      turns: entry.turns + 1,
      last_message_time: new Date().toISOString(),
      channel: "http",
    });
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
    const small = await openWith(SMALL_ENTRIES);
    let smallPaced: UpdateRun;
    try {
      smallPaced = await updateMany(small.registry, SMALL_ENTRIES, UPDATES, spreadMs / UPDATES);
    } finally {
      await small.remove();
    }
    const fileKb = Math.round((await stat(large.file)).size / 1024);
    return {
      entries: ENTRIES,
      fileKb,
      openMs: round(large.openMs),
      burst,
      paced: { ...paced, spreadMs },
      smallRegistry: { entries: SMALL_ENTRIES, paced: smallPaced },
    };
  } finally {
    await large.remove();
  }
}

function rows(result: RegistryResult): Row[] {
  const { burst, paced, smallRegistry } = result;
  return [
    {
      measure: `open ${result.entries.toLocaleString("en-US")} entries (${result.fileKb} kB file)`,
      value: ms(result.openMs),
    },
    {
      measure: `${burst.updates} updates at once: writes (fsynced) / time`,
      value: `${burst.writes} / ${ms(burst.elapsedMs)}`,
    },
    {
      measure: `${paced.updates} updates over ${paced.spreadMs / 1000} s: writes / CPU`,
      value: `${paced.writes} / ${ms(paced.cpuMs)}`,
    },
    {
      measure: `the same, ${smallRegistry.entries} entries: writes / CPU`,
      value: `${smallRegistry.paced.writes} / ${ms(smallRegistry.paced.cpuMs)}`,
    },
    {
      measure: `one write, ${result.entries.toLocaleString("en-US")} entries: CPU / wall`,
      value: `${ms(paced.cpuPerWriteMs)} / ${ms(paced.meanWriteMs)}`,
    },
    {
      measure: `one write, ${smallRegistry.entries} entries: CPU / wall`,
      value: `${ms(smallRegistry.paced.cpuPerWriteMs)} / ${ms(smallRegistry.paced.meanWriteMs)}`,
    },
  ];
}

export const registry: Scenario<RegistryResult> = { name: "registry", run, rows };
