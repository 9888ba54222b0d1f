import { mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { InboundMessage } from "../../../src/channels/channel.js";
import { ManualClock } from "../../support/manual-clock.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import type { Journal } from "../../../src/store/journal.js";
import {
  openStateDatabase,
  SCHEMA_VERSION,
  type Database,
} from "../../../src/store/sqlite-database.js";
import { createSqliteJournal } from "../../../src/store/sqlite-journal.js";
import { asSessionName } from "../../../src/utils/ids.js";
import { describeJournalContract, expectDispatchError } from "./journal-contract.js";

let folder: string;
let path: string;
let clock: ManualClock;
let db: Database | undefined;
let journal: Journal;

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-journal-"));
  path = join(folder, "state", "journal.db");
  clock = new ManualClock();
  journal = open();
});
afterEach(async () => {
  if (db?.open) db.close();
  await rm(folder, { recursive: true, force: true });
});

function open(): Journal {
  db = openStateDatabase({ path, logger: createMemoryLogger() });
  return createSqliteJournal({ db, clock });
}

async function reopen(): Promise<Journal> {
  await journal.close();
  return (journal = open());
}

let counter = 0;
function message(overrides: Partial<InboundMessage> = {}): InboundMessage {
  counter += 1;
  return {
    channel: "http",
    chatId: "+15551234567",
    text: `hello ${counter}`,
    externalId: `m-${counter}`,
    receivedAt: new Date(clock.now()),
    ...overrides,
  };
}

function tableCount(table: "inbound" | "outbox" | "cursors"): number {
  return db!.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
}

/** The SQLite journal passes the contract every journal adapter does. */
describeJournalContract("sqlite", {
  async create(contractClock) {
    await journal.close();
    clock = contractClock;
    return (journal = open());
  },
  cleanup: () => Promise.resolve(),
  tableCount: (table) => Promise.resolve(tableCount(table)),
  externalIds: () =>
    Promise.resolve(
      db!.prepare("SELECT external_id FROM inbound ORDER BY id").pluck().all() as (string | null)[],
    ),
  outboxPart: (inboundId, part) =>
    Promise.resolve(
      db!
        .prepare("SELECT attempts, sent_at, error FROM outbox WHERE inbound_id = ? AND part = ?")
        .get(inboundId, part) as { attempts: number; sent_at: number | null; error: string | null },
    ),
  // Every broken reference; the journal's are the outbox's to its message.
  orphanedParts: () => Promise.resolve((db!.pragma("foreign_key_check") as unknown[]).length),
  failWrites(table, message) {
    db!.exec(`CREATE TRIGGER fail_${table}_insert BEFORE INSERT ON ${table}
              BEGIN SELECT RAISE(ABORT, '${message}'); END`);
    db!.exec(`CREATE TRIGGER fail_${table}_update BEFORE UPDATE ON ${table}
              BEGIN SELECT RAISE(ABORT, '${message}'); END`);
    return Promise.resolve();
  },
  failedCode: "journal_failed",
});

describe("openStateDatabase", () => {
  it("creates a private folder and file, in WAL mode with normal sync and foreign keys", async () => {
    expect((await stat(join(folder, "state"))).mode & 0o777).toBe(0o700);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(db!.pragma("journal_mode", { simple: true })).toBe("wal");
    // NORMAL between writes; the writes a promise rests on are fsynced (sqlite-durability.test.ts)
    expect(db!.pragma("synchronous", { simple: true })).toBe(1);
    expect(db!.pragma("foreign_keys", { simple: true })).toBe(1);
    expect(db!.pragma("busy_timeout", { simple: true })).toBe(5000);
    expect(db!.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
    const tables = db!
      .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
      .pluck()
      .all();
    expect(tables).toEqual([
      "activity",
      "cursors",
      "inbound",
      "outbox",
      "registry",
      "registry_import",
      "sqlite_sequence",
      "transcript_entries",
      "transcript_keys",
      "turns",
    ]);
  });

  it("keeps what was recorded across a reopen, migrating nothing twice", async () => {
    const recorded = await journal.recordInbound(message(), { cursor: "7" });
    await reopen();
    expect((await journal.pendingInbound()).map((row) => row.id)).toEqual([recorded.id]);
    expect(await journal.cursor("http")).toBe("7");
    expect(db!.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
  });

  it("tightens a journal file other users could read", async () => {
    await journal.close();
    const { chmod } = await import("node:fs/promises");
    await chmod(path, 0o644);
    const logger = createMemoryLogger();
    db = openStateDatabase({ path, logger });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(logger.records.map((record) => record.message)).toContain("journal-mode-tighten");
  });

  it("refuses a file that is not SQLite at all, and leaves it as it was", async () => {
    await journal.close();
    const garbage = Buffer.from("this is not a database, just some bytes ".repeat(200));
    await writeFile(path, garbage);
    const error = await expectDispatchError(
      () => openStateDatabase({ path, logger: createMemoryLogger() }),
      "journal_corrupt",
    );
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/stop dispatch/i);
    expect(error.message).toContain("sessions.json");
    expect(error.message).toMatch(/backup/);
    expect((await readFile(path)).equals(garbage)).toBe(true);
  });

  it.each([0.5, 0.97])("refuses a real journal truncated to %s of its size", async (fraction) => {
    db!.transaction(() => {
      for (let index = 0; index < 2000; index += 1) {
        // SQLite's journal writes at the call: inside this transaction, as a savepoint.
        void journal.recordInbound(message({ text: "x".repeat(200) }));
      }
    })();
    await journal.close(); // checkpoints the WAL into the main file
    const size = (await stat(path)).size;
    await truncate(path, Math.floor(size * fraction));
    const before = await readFile(path);
    const error = await expectDispatchError(
      () => openStateDatabase({ path, logger: createMemoryLogger() }),
      "journal_corrupt",
    );
    expect(error.message).toContain(path);
    expect((await readFile(path)).equals(before)).toBe(true);
  });

  it("refuses a journal truncated inside its header", async () => {
    await journal.close();
    await truncate(path, 50);
    await expectDispatchError(
      () => openStateDatabase({ path, logger: createMemoryLogger() }),
      "journal_corrupt",
    );
    expect((await stat(path)).size).toBe(50);
  });

  it("refuses a journal written by a newer dispatch", async () => {
    db!.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    await journal.close();
    const error = await expectDispatchError(
      () => openStateDatabase({ path, logger: createMemoryLogger() }),
      "journal_too_new",
    );
    expect(error.message).toContain(path);
  });

  it("reports a path it cannot create as unwritable, naming the path and the cause", async () => {
    const blocker = join(folder, "not-a-folder");
    await writeFile(blocker, "");
    const target = join(blocker, "state", "journal.db");
    const error = await expectDispatchError(
      () => openStateDatabase({ path: target, logger: createMemoryLogger() }),
      "journal_unwritable",
    );
    expect(error.message).toContain(target);
    expect(error.message).toMatch(/ENOTDIR|EEXIST/);
  });

  it("reports a journal path that is a folder as unwritable", async () => {
    const target = join(folder, "folder.db");
    await mkdir(target);
    const error = await expectDispatchError(
      () => openStateDatabase({ path: target, logger: createMemoryLogger() }),
      "journal_unwritable",
    );
    expect(error.message).toContain(target);
  });

  it("reports a read-only database as unwritable when a write fails", async () => {
    db!.pragma("query_only = ON");
    const error = await expectDispatchError(
      () => journal.recordInbound(message()),
      "journal_unwritable",
    );
    expect(error.message).toContain(path);
    expect(error.message).toContain("SQLITE_READONLY");
  });

  it("reports a full disk as journal_full", async () => {
    const pages = db!.pragma("page_count", { simple: true }) as number;
    db!.pragma(`max_page_count = ${pages + 2}`);
    const error = await expectDispatchError(async () => {
      for (let index = 0; index < 100; index += 1) {
        await journal.recordInbound(message({ text: "x".repeat(4000) }));
      }
    }, "journal_full");
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/disk is full/);
  });
});

describe("close", () => {
  it("closes the database; later calls fail with a journal error", async () => {
    await journal.close();
    expect(db!.open).toBe(false);
    await journal.close(); // twice is fine
    const error = await expectDispatchError(() => journal.counts(), "journal_failed");
    expect(error.message).toContain(path);
  });

  it("holds a database another connection reads as committed", async () => {
    await journal.recordInbound(message({ externalId: "seen" }), { cursor: "9" });
    const reader = new BetterSqlite3(path, { readonly: true });
    try {
      expect(reader.prepare("SELECT value FROM cursors").pluck().get()).toBe("9");
      expect(reader.prepare("SELECT external_id FROM inbound").pluck().all()).toEqual(["seen"]);
    } finally {
      reader.close();
    }
  });
});

describe("markAnswered with a fence", () => {
  it("records the reply whatever the fence names: the embedded journal has one node", async () => {
    const { id } = await journal.recordInbound(message({ chatId: "alice" }));
    // A tenure no lease table holds (there is none here): a PostgreSQL journal refuses it.
    const rows = await journal.markAnswered(
      [id],
      { channel: "http", chatId: "alice", parts: ["recorded all the same"] },
      { fence: { sessionName: asSessionName("alice"), owner: "some-other-node", epoch: 7 } },
    );
    expect(rows.map((row) => row.text)).toEqual(["recorded all the same"]);
    expect(await journal.answersTo([id])).toEqual([
      { id, chatId: "alice", status: "answered", reply: ["recorded all the same"] },
    ]);
  });
});
