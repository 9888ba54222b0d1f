/**
 * Registry: what a new chat and a bookkeeping update cost at 100, 10,000 and 100,000 registered
 * chats, on each adapter (rows in SQLite, the default, and in PostgreSQL), through the registry as
 * the daemon opens it (`openRowRegistry`, its default windows). Each change is followed by
 * `flush()`, so each is one write of its own: a new chat commits durably (fsync: SQLite's
 * `synchronous=FULL`, PostgreSQL's WAL flush), a bookkeeping update does not. Flat across sizes is
 * the target: a write carries only the changed chat's row.
 *
 * Beside them: opening (every row read into memory), and one write of the sessions.json export,
 * which is the whole file and grows with the chats (it is written at most once per 10 s).
 *
 * `--quick` measures 100 and 10,000 chats, 30 changes of each kind; a full run all three sizes,
 * 200 of each.
 *
 * PostgreSQL is a private server started for the run (Debian's `postgresql`, as the tests use),
 * with fsync on. Without one installed, its rows are left out and the log says why.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { asChatId, asSessionName, newAgentSessionId, type ChatId } from "../../src/utils/ids.js";
import { createLogger } from "../../src/logging/logger.js";
import type { RegistryEntry } from "../../src/store/registry.js";
import type { RegistryRows } from "../../src/store/registry-rows.js";
import { openRowRegistry, type RowRegistry } from "../../src/store/row-registry.js";
import { openStateDatabase } from "../../src/store/sqlite-database.js";
import { createSqliteRegistryRows } from "../../src/store/sqlite-registry-rows.js";
import { openPostgresDatabase } from "../../src/store/postgres/postgres-database.js";
import { createPostgresRegistryRows } from "../../src/store/postgres/postgres-registry-rows.js";
import { startPostgresServer, stopPostgresServer } from "../../test/support/postgres-server.js";
import { BENCH_TIER } from "../lib/direct-sdk.js";
import { contactName, phoneNumber, sessionName } from "../lib/fixtures.js";
import { ms, type BenchContext, type Row, type Scenario } from "../lib/scenario.js";
import { median, round } from "../lib/stats.js";

const SIZES = [100, 10_000, 100_000];
const FILL_BATCH = 5_000;

export interface ChangeCost {
  samples: number;
  /** Wall time of one change and its flush: median and mean. */
  p50Ms: number;
  meanMs: number;
  /** CPU of this process per change (PostgreSQL's own work is not in it). */
  cpuMs: number;
}

export interface RegistrySizeRun {
  adapter: "sqlite" | "postgresql";
  chats: number;
  openMs: number;
  openCpuMs: number;
  newChat: ChangeCost;
  bookkeeping: ChangeCost;
  /** One write of the whole sessions.json export at this size. */
  exportWriteMs: number;
}

export interface RegistryResult {
  runs: RegistrySizeRun[];
  /** Why PostgreSQL was left out, when it was. */
  postgresSkipped?: string;
}

interface Storage {
  rows: RegistryRows;
  close(): Promise<void>;
}

function entryOf(index: number): RegistryEntry {
  return {
    session_name: asSessionName(sessionName(index)),
    contact_name: contactName(index),
    tier: BENCH_TIER,
    session_id: newAgentSessionId(),
    created_at: new Date().toISOString(),
    last_message_time: null,
    chat_kind: "individual",
    channel: "http",
    previous_session_ids: [],
    turns: 0,
    errors: 0,
    restarts: 0,
  };
}

async function fill(rows: RegistryRows, chats: number): Promise<void> {
  for (let from = 0; from < chats; from += FILL_BATCH) {
    const batch: [ChatId, RegistryEntry][] = [];
    for (let index = from; index < Math.min(chats, from + FILL_BATCH); index += 1) {
      batch.push([asChatId(phoneNumber(index)), entryOf(index)]);
    }
    await rows.write(batch, { durable: false });
  }
}

/** Runs `change(i)` then `flush()`, `samples` times, one after the other. */
async function measure(
  registry: RowRegistry,
  samples: number,
  change: (index: number) => void,
): Promise<ChangeCost> {
  const times: number[] = [];
  const cpuBefore = process.cpuUsage();
  for (let index = 0; index < samples; index += 1) {
    const started = performance.now();
    change(index);
    await registry.flush();
    times.push(performance.now() - started);
  }
  const cpu = process.cpuUsage(cpuBefore);
  return {
    samples,
    p50Ms: round(median(times), 2),
    meanMs: round(times.reduce((sum, time) => sum + time, 0) / samples, 2),
    cpuMs: round((cpu.user + cpu.system) / 1000 / samples, 2),
  };
}

async function runSize(
  adapter: RegistrySizeRun["adapter"],
  storage: Storage,
  chats: number,
  samples: number,
  folder: string,
): Promise<RegistrySizeRun> {
  await fill(storage.rows, chats);
  const logger = createLogger({ level: "silent" });
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const registry = await openRowRegistry({ rows: storage.rows, logger });
  const openMs = performance.now() - started;
  const openCpu = process.cpuUsage(cpuBefore);
  try {
    const newChat = await measure(registry, samples, (index) => {
      registry.set(asChatId(phoneNumber(chats + index)), entryOf(chats + index));
    });
    const bookkeeping = await measure(registry, samples, (index) => {
      const chatId = asChatId(phoneNumber((index * 7919) % chats));
      const entry = registry.get(chatId)!;
      registry.update(chatId, {
        turns: entry.turns + 1,
        last_message_time: new Date().toISOString(),
      });
    });
    // The export's cost at this size: one whole write of the file, from an image made once.
    const exporter = await openRowRegistry({
      rows: storage.rows,
      logger,
      file: path.join(folder, `sessions-${adapter}-${chats}.json`),
    });
    exporter.update(asChatId(phoneNumber(0)), { turns: 1_000_000 });
    await exporter.export!.write();
    const exportWriteMs = exporter.export!.stats.lastWriteMs;
    await exporter.close();
    return {
      adapter,
      chats,
      openMs: round(openMs),
      openCpuMs: round((openCpu.user + openCpu.system) / 1000),
      newChat,
      bookkeeping,
      exportWriteMs: round(exportWriteMs, 1),
    };
  } finally {
    await registry.close();
  }
}

async function run(context: BenchContext): Promise<RegistryResult> {
  const samples = context.quick ? 30 : 200;
  const sizes = context.quick ? SIZES.slice(0, 2) : SIZES;
  const folder = await mkdtemp(path.join(os.tmpdir(), "dispatch-bench-registry-"));
  const logger = createLogger({ level: "silent" });
  const runs: RegistrySizeRun[] = [];
  let postgresSkipped: string | undefined;
  try {
    for (const chats of sizes) {
      const db = openStateDatabase({ path: path.join(folder, `journal-${chats}.db`), logger });
      const storage: Storage = {
        rows: createSqliteRegistryRows({ db }),
        close: () => Promise.resolve(void db.close()),
      };
      try {
        runs.push(await runSize("sqlite", storage, chats, samples, folder));
      } finally {
        await storage.close();
      }
      context.log(`registry: sqlite at ${chats} chats done`);
    }

    const serverFolder = await mkdtemp(path.join(os.tmpdir(), "dispatch-bench-pg-"));
    let server: Awaited<ReturnType<typeof startPostgresServer>> | undefined;
    try {
      server = await startPostgresServer(serverFolder, { durable: true });
    } catch (error) {
      postgresSkipped = error instanceof Error ? error.message.split("\n")[0] : String(error);
      context.log(`registry: PostgreSQL left out: ${postgresSkipped}`);
    }
    try {
      for (const chats of server ? sizes : []) {
        const database = await openPostgresDatabase({
          url: `${server!.url}/postgres`,
          logger,
        });
        await database.pool.query("TRUNCATE registry, registry_import");
        const storage = {
          rows: createPostgresRegistryRows({ database }),
          close: () => database.close(),
        };
        try {
          runs.push(await runSize("postgresql", storage, chats, samples, folder));
        } finally {
          await storage.close();
        }
        context.log(`registry: postgresql at ${chats} chats done`);
      }
    } finally {
      if (server) await stopPostgresServer(server.pid);
      await rm(serverFolder, { recursive: true, force: true });
    }
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
  return { runs, ...(postgresSkipped === undefined ? {} : { postgresSkipped }) };
}

function rows(result: RegistryResult): Row[] {
  const table: Row[] = result.runs.map((entry) => ({
    measure:
      `${entry.adapter}, ${entry.chats.toLocaleString("en-US")} chats: new chat / bookkeeping ` +
      `update (median wall, CPU) / open / sessions.json export write`,
    value:
      `${entry.newChat.p50Ms} ms, ${entry.newChat.cpuMs} ms / ` +
      `${entry.bookkeeping.p50Ms} ms, ${entry.bookkeeping.cpuMs} ms / ` +
      `${ms(entry.openMs)} / ${ms(entry.exportWriteMs)}`,
  }));
  if (result.postgresSkipped !== undefined) {
    table.push({ measure: "postgresql", value: `left out: ${result.postgresSkipped}` });
  }
  return table;
}

export const registry: Scenario<RegistryResult> = { name: "registry", run, rows };
