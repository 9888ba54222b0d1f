/**
 * Which journal writes are fsynced. The connection commits with `synchronous=NORMAL` (safe from a
 * crash of dispatch, not from a power cut); the writes something outside relies on must commit
 * with `synchronous=FULL`. Each statement is watched through a proxy that notes the level in
 * force when it ran.
 */
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ManualClock } from "../../support/manual-clock.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import type { Journal } from "../../../src/store/journal.js";
import { openStateDatabase, type Database } from "../../../src/store/sqlite-database.js";
import { durableWrites } from "../../../src/store/sqlite-durability.js";
import { createSqliteJournal } from "../../../src/store/sqlite-journal.js";
import { createSqliteTranscriptStore } from "../../../src/store/sqlite-transcript-store.js";
import type { TranscriptStore } from "../../../src/store/transcript-store.js";

const FULL = 2;
const NORMAL = 1;

let folder: string;
let db: Database;
/** The first words of each data statement run, with the synchronous level it ran under. */
let ran: { sql: string; level: number }[];
let journal: Journal;
let transcripts: TranscriptStore;

/** `db`, with every prepared statement noting `synchronous` before it runs. */
function watched(target: Database): Database {
  const watchStatement = (sql: string, statement: BetterSqlite3.Statement): unknown => {
    const proxy: unknown = new Proxy(statement, {
      get(inner, key) {
        const value: unknown = Reflect.get(inner, key);
        if (typeof value !== "function") return value;
        if (key === "pluck" || key === "raw" || key === "expand") {
          return (...args: unknown[]) => {
            (value as (...rest: unknown[]) => unknown).apply(inner, args);
            return proxy;
          };
        }
        if (key === "run" || key === "get" || key === "all") {
          return (...args: unknown[]) => {
            if (!/^\s*PRAGMA/i.test(sql)) {
              const level = target.pragma("synchronous", { simple: true }) as number;
              ran.push({ sql: sql.trim().replace(/\s+/g, " ").slice(0, 40), level });
            }
            return (value as (...rest: unknown[]) => unknown).apply(inner, args);
          };
        }
        return (value as (...rest: unknown[]) => unknown).bind(inner);
      },
    });
    return proxy;
  };
  return new Proxy(target, {
    get(inner, key) {
      const value: unknown = Reflect.get(inner, key);
      if (key === "prepare") {
        return (sql: string) => watchStatement(sql, inner.prepare(sql));
      }
      return typeof value === "function" ? (value as () => unknown).bind(inner) : value;
    },
  });
}

function levelOf(prefix: string): number[] {
  return ran.filter((entry) => entry.sql.startsWith(prefix)).map((entry) => entry.level);
}

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-durability-"));
  db = openStateDatabase({ path: join(folder, "journal.db"), logger: createMemoryLogger() });
  ran = [];
  const clock = new ManualClock();
  journal = createSqliteJournal({ db: watched(db), clock });
  transcripts = createSqliteTranscriptStore({ db: watched(db), clock });
});
afterEach(async () => {
  if (db.open) db.close();
  await rm(folder, { recursive: true, force: true });
});

describe("journal durability", () => {
  it("fsyncs a reply and a replay attempt; not a recorded message, nor the bookkeeping", async () => {
    const recorded = await journal.recordInbound({
      channel: "http",
      chatId: "+15551234567",
      text: "hello",
      externalId: "m-1",
      receivedAt: new Date(0),
    });
    await journal.markDelivered(recorded.id);
    await journal.recordAttempt(recorded.id);
    await journal.markAnswered([recorded.id], {
      channel: "http",
      chatId: "+15551234567",
      parts: ["hi"],
    });
    await journal.markSent(recorded.id, 0);
    await journal.recordTurn({
      chatId: "+15551234567",
      sessionId: "session-1",
      messageUuids: [recorded.uuid],
      endedAt: new Date(0),
      durationMs: 5,
      isError: false,
      totalCostUsd: 0.01,
      totalTokens: 10,
      costUsd: 0.01,
    });
    await transcripts.append({ projectKey: "project", sessionId: "session-1" }, [
      { type: "user", uuid: "entry-1" },
    ]);

    // Fsynced by `sync()` before it is acknowledged, or by the reply's record (below).
    expect(levelOf("INSERT INTO inbound")).toEqual([NORMAL]);
    expect(levelOf("UPDATE inbound SET attempts")).toEqual([FULL]);
    expect(levelOf("UPDATE inbound SET status = 'answered'")).toEqual([FULL]);
    expect(levelOf("INSERT INTO outbox")).toEqual([FULL]);
    expect(levelOf("UPDATE inbound SET status = 'delivered'")).toEqual([NORMAL]);
    expect(levelOf("UPDATE outbox SET status = 'sent'")).toEqual([NORMAL]);
    expect(levelOf("INSERT INTO turns")).toEqual([NORMAL]);
    expect(levelOf("INSERT INTO transcript_entries")).toEqual([NORMAL]);
    // Back to NORMAL after every durable write.
    expect(db.pragma("synchronous", { simple: true })).toBe(NORMAL);
  });

  it("puts the level back when the write throws", () => {
    const durable = durableWrites(db);
    expect(() =>
      durable(() => {
        expect(db.pragma("synchronous", { simple: true })).toBe(FULL);
        throw new Error("write failed");
      }),
    ).toThrow("write failed");
    expect(db.pragma("synchronous", { simple: true })).toBe(NORMAL);
  });

  it("leaves the level alone inside a caller's transaction, which SQLite would refuse", () => {
    const durable = durableWrites(db);
    const level = db.transaction(() => durable(() => db.pragma("synchronous", { simple: true })));
    expect(level()).toBe(NORMAL);
  });
});

describe("journal sync", () => {
  /** Counts fdatasync calls made through any FileHandle. */
  async function countDatasyncs() {
    const probe = await open(join(folder, "journal.db"), "r");
    const prototype = Object.getPrototypeOf(probe) as { datasync(): Promise<void> };
    await probe.close();
    return vi.spyOn(prototype, "datasync");
  }

  it("syncs the WAL the writes went to, once per call when the calls come one at a time", async () => {
    const datasync = await countDatasyncs();
    await journal.recordInbound({
      channel: "http",
      chatId: "+1555",
      text: "a",
      receivedAt: new Date(0),
    });
    await journal.sync();
    await journal.sync();
    expect(datasync).toHaveBeenCalledTimes(2);
    datasync.mockRestore();
  });

  it("lets calls that overlap share a sync: one running, one more after it", async () => {
    const datasync = await countDatasyncs();
    await Promise.all([journal.sync(), journal.sync(), journal.sync(), journal.sync()]);
    expect(datasync).toHaveBeenCalledTimes(2);
    datasync.mockRestore();
  });

  it("has nothing to do once the journal is closed: closing wrote everything out", async () => {
    await journal.sync();
    await journal.close();
    const datasync = await countDatasyncs();
    await expect(journal.sync()).resolves.toBeUndefined();
    expect(datasync).not.toHaveBeenCalled();
    datasync.mockRestore();
  });
});
