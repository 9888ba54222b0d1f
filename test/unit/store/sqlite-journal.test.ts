import { mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { InboundMessage } from "../../../src/channels/channel.js";
import { ManualClock } from "../../support/manual-clock.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { DEFAULT_RETENTION_MS, type Journal } from "../../../src/store/journal.js";
import {
  openStateDatabase,
  SCHEMA_VERSION,
  type Database,
} from "../../../src/store/sqlite-database.js";
import { createSqliteJournal } from "../../../src/store/sqlite-journal.js";

const DAY_MS = 24 * 60 * 60 * 1000;

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

function reopen(): Journal {
  journal.close();
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

function expectDispatchError(work: () => unknown, code: string): DispatchError {
  let caught: unknown;
  try {
    work();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(DispatchError);
  expect((caught as DispatchError).code).toBe(code);
  return caught as DispatchError;
}

function tableCount(table: "inbound" | "outbox" | "cursors"): number {
  return db!.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;
}

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

  it("keeps what was recorded across a reopen, migrating nothing twice", () => {
    const recorded = journal.recordInbound(message(), { cursor: "7" });
    reopen();
    expect(journal.pendingInbound().map((row) => row.id)).toEqual([recorded.id]);
    expect(journal.cursor("http")).toBe("7");
    expect(db!.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
  });

  it("tightens a journal file other users could read", async () => {
    journal.close();
    const { chmod } = await import("node:fs/promises");
    await chmod(path, 0o644);
    const logger = createMemoryLogger();
    db = openStateDatabase({ path, logger });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(logger.records.map((record) => record.message)).toContain("journal-mode-tighten");
  });

  it("refuses a file that is not SQLite at all, and leaves it as it was", async () => {
    journal.close();
    const garbage = Buffer.from("this is not a database, just some bytes ".repeat(200));
    await writeFile(path, garbage);
    const error = expectDispatchError(
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
        journal.recordInbound(message({ text: "x".repeat(200) }));
      }
    })();
    journal.close(); // checkpoints the WAL into the main file
    const size = (await stat(path)).size;
    await truncate(path, Math.floor(size * fraction));
    const before = await readFile(path);
    const error = expectDispatchError(
      () => openStateDatabase({ path, logger: createMemoryLogger() }),
      "journal_corrupt",
    );
    expect(error.message).toContain(path);
    expect((await readFile(path)).equals(before)).toBe(true);
  });

  it("refuses a journal truncated inside its header", async () => {
    journal.close();
    await truncate(path, 50);
    expectDispatchError(
      () => openStateDatabase({ path, logger: createMemoryLogger() }),
      "journal_corrupt",
    );
    expect((await stat(path)).size).toBe(50);
  });

  it("refuses a journal written by a newer dispatch", () => {
    db!.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    journal.close();
    const error = expectDispatchError(
      () => openStateDatabase({ path, logger: createMemoryLogger() }),
      "journal_too_new",
    );
    expect(error.message).toContain(path);
  });

  it("reports a path it cannot create as unwritable, naming the path and the cause", async () => {
    const blocker = join(folder, "not-a-folder");
    await writeFile(blocker, "");
    const target = join(blocker, "state", "journal.db");
    const error = expectDispatchError(
      () => openStateDatabase({ path: target, logger: createMemoryLogger() }),
      "journal_unwritable",
    );
    expect(error.message).toContain(target);
    expect(error.message).toMatch(/ENOTDIR|EEXIST/);
  });

  it("reports a journal path that is a folder as unwritable", async () => {
    const target = join(folder, "folder.db");
    await mkdir(target);
    const error = expectDispatchError(
      () => openStateDatabase({ path: target, logger: createMemoryLogger() }),
      "journal_unwritable",
    );
    expect(error.message).toContain(target);
  });

  it("reports a read-only database as unwritable when a write fails", () => {
    db!.pragma("query_only = ON");
    const error = expectDispatchError(() => journal.recordInbound(message()), "journal_unwritable");
    expect(error.message).toContain(path);
    expect(error.message).toContain("SQLITE_READONLY");
  });

  it("reports a full disk as journal_full", () => {
    const pages = db!.pragma("page_count", { simple: true }) as number;
    db!.pragma(`max_page_count = ${pages + 2}`);
    const error = expectDispatchError(() => {
      for (let index = 0; index < 100; index += 1) {
        journal.recordInbound(message({ text: "x".repeat(4000) }));
      }
    }, "journal_full");
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/disk is full/);
  });
});

describe("recordInbound", () => {
  it("records a new message with a fresh uuid and every field the channel gave", () => {
    const receivedAt = new Date("2026-01-01T09:00:00.000Z");
    const result = journal.recordInbound(
      message({ sender: "+15550000001", groupName: "Family", externalId: "a-1", receivedAt }),
    );
    expect(result).toEqual({
      id: expect.any(Number) as number,
      uuid: expect.stringMatching(/^[0-9a-f-]{36}$/) as string,
      duplicate: false,
      status: "received",
    });
    const row = journal.findByExternalId("http", "a-1");
    expect(row).toMatchObject({
      id: result.id,
      uuid: result.uuid,
      channel: "http",
      chatId: "+15551234567",
      sender: "+15550000001",
      groupName: "Family",
      externalId: "a-1",
      receivedAt,
      status: "received",
      attempts: 0,
    });
    expect(row?.answeredBy).toBeUndefined();
  });

  it("records messages without an external id as new every time", () => {
    const first = journal.recordInbound(message({ externalId: undefined, text: "same" }));
    const second = journal.recordInbound(message({ externalId: undefined, text: "same" }));
    expect(second.id).not.toBe(first.id);
    expect(second.uuid).not.toBe(first.uuid);
    expect(second.duplicate).toBe(false);
    expect(journal.pendingInbound()).toHaveLength(2);
    expect(journal.pendingInbound()[0]?.externalId).toBeUndefined();
  });

  it("keys external ids by channel", () => {
    const http = journal.recordInbound(message({ channel: "http", externalId: "42" }));
    const imessage = journal.recordInbound(message({ channel: "imessage", externalId: "42" }));
    expect(imessage.duplicate).toBe(false);
    expect(imessage.id).not.toBe(http.id);
  });

  it("reports a redelivered message that is not yet answered as a duplicate, without a reply", () => {
    const first = journal.recordInbound(message({ externalId: "dup" }));
    journal.markDelivered(first.id);
    const again = journal.recordInbound(message({ externalId: "dup", text: "changed" }));
    expect(again).toEqual({ id: first.id, uuid: first.uuid, duplicate: true, status: "delivered" });
    expect(tableCount("inbound")).toBe(1);
    expect(journal.findByExternalId("http", "dup")?.text).not.toBe("changed");
  });

  it("answers a duplicate delivery once: the second record returns the first reply's parts", () => {
    const first = journal.recordInbound(message({ externalId: "once" }));
    journal.markDelivered(first.id);
    journal.markAnswered([first.id], { channel: "http", chatId: "+1555", parts: ["a", "b"] });
    const again = journal.recordInbound(message({ externalId: "once" }));
    expect(again).toEqual({
      id: first.id,
      uuid: first.uuid,
      duplicate: true,
      status: "answered",
      reply: ["a", "b"],
    });
    expect(journal.pendingInbound()).toEqual([]);
    expect(journal.counts().inbound.answered).toBe(1);
    expect(tableCount("outbox")).toBe(2);
  });

  it("reports a rejected duplicate as rejected, with no reply", () => {
    const first = journal.recordInbound(message({ externalId: "stranger" }));
    journal.markRejected(first.id, "unknown_sender", "not in contacts");
    const again = journal.recordInbound(message({ externalId: "stranger" }));
    expect(again.status).toBe("rejected");
    expect(again.duplicate).toBe(true);
    expect(again.reply).toBeUndefined();
  });

  it("refuses an invalid receivedAt without touching the cursor", () => {
    journal.recordInbound(message(), { cursor: "1" });
    expectDispatchError(
      () => journal.recordInbound(message({ receivedAt: new Date("nope") }), { cursor: "2" }),
      "journal_invalid_message",
    );
    expect(journal.cursor("http")).toBe("1");
  });
});

describe("cursors", () => {
  it("has no cursor until a message brings one, then keeps the latest per channel", () => {
    expect(journal.cursor("imessage")).toBeUndefined();
    journal.recordInbound(message({ channel: "imessage" }), { cursor: "100" });
    journal.recordInbound(message({ channel: "imessage" }), { cursor: "101" });
    journal.recordInbound(message({ channel: "signal" }), { cursor: "s-9" });
    journal.recordInbound(message({ channel: "imessage" })); // no cursor: unchanged
    expect(journal.cursor("imessage")).toBe("101");
    expect(journal.cursor("signal")).toBe("s-9");
  });

  it("advances the cursor past a duplicate", () => {
    journal.recordInbound(message({ channel: "imessage", externalId: "g1" }), { cursor: "1" });
    const again = journal.recordInbound(message({ channel: "imessage", externalId: "g1" }), {
      cursor: "2",
    });
    expect(again.duplicate).toBe(true);
    expect(journal.cursor("imessage")).toBe("2");
  });

  it("leaves the cursor unchanged when the insert fails inside the transaction", () => {
    journal.recordInbound(message({ channel: "imessage" }), { cursor: "1" });
    db!.exec(`CREATE TRIGGER fail_insert BEFORE INSERT ON inbound
              BEGIN SELECT RAISE(ABORT, 'injected insert failure'); END`);
    const error = expectDispatchError(
      () => journal.recordInbound(message({ channel: "imessage" }), { cursor: "2" }),
      "journal_failed",
    );
    expect(error.message).toContain("injected insert failure");
    expect(journal.cursor("imessage")).toBe("1");
    expect(tableCount("inbound")).toBe(1);
  });

  it("leaves no message behind when the cursor write fails inside the transaction", () => {
    journal.recordInbound(message({ channel: "imessage" }), { cursor: "1" });
    db!.exec(`CREATE TRIGGER fail_cursor BEFORE UPDATE ON cursors
              BEGIN SELECT RAISE(ABORT, 'injected cursor failure'); END`);
    db!.exec(`CREATE TRIGGER fail_cursor_insert BEFORE INSERT ON cursors
              BEGIN SELECT RAISE(ABORT, 'injected cursor failure'); END`);
    expectDispatchError(
      () => journal.recordInbound(message({ channel: "imessage" }), { cursor: "2" }),
      "journal_failed",
    );
    expect(tableCount("inbound")).toBe(1);
    expect(journal.cursor("imessage")).toBe("1");
  });
});

describe("inbound states", () => {
  it("moves received -> delivered and never back from answered", () => {
    const { id } = journal.recordInbound(message({ externalId: "s1" }));
    clock.advance(1000);
    journal.markDelivered(id);
    const delivered = journal.findByExternalId("http", "s1");
    expect(delivered?.status).toBe("delivered");
    expect(delivered?.updatedAt.getTime()).toBe(clock.now());
    journal.markAnswered([id], { channel: "http", chatId: "c", parts: ["ok"] });
    journal.markDelivered(id);
    expect(journal.findByExternalId("http", "s1")?.status).toBe("answered");
  });

  it("rejects with a code and a message, and drops the row from the replay list", () => {
    const { id } = journal.recordInbound(message({ externalId: "r1" }));
    journal.markRejected(id, "invalid_chat_id", "chat id ../x is not valid");
    expect(journal.findByExternalId("http", "r1")).toMatchObject({
      status: "rejected",
      errorCode: "invalid_chat_id",
      errorMessage: "chat id ../x is not valid",
    });
    expect(journal.pendingInbound()).toEqual([]);
  });

  it("counts attempts", () => {
    const { id } = journal.recordInbound(message({ externalId: "a1" }));
    expect(journal.recordAttempt(id)).toBe(1);
    expect(journal.recordAttempt(id)).toBe(2);
    expect(journal.findByExternalId("http", "a1")?.attempts).toBe(2);
  });

  it("keeps the envelope nonce a message was handed over in, and reports it for a redelivery", () => {
    const { id } = journal.recordInbound(message({ externalId: "e1" }));
    expect(journal.findByExternalId("http", "e1")).not.toHaveProperty("envelopeNonce");
    journal.recordEnvelopeNonce(id, "0123456789abcdef01234567");
    expect(journal.pendingInbound()[0]?.envelopeNonce).toBe("0123456789abcdef01234567");
    expect(journal.recordInbound(message({ externalId: "e1" }))).toMatchObject({
      duplicate: true,
      envelopeNonce: "0123456789abcdef01234567",
    });
  });

  it("throws journal_unknown_inbound for ids it never recorded", () => {
    expectDispatchError(() => journal.markDelivered(999), "journal_unknown_inbound");
    expectDispatchError(() => journal.recordEnvelopeNonce(999, "n"), "journal_unknown_inbound");
    expectDispatchError(() => journal.markRejected(999, "x", "y"), "journal_unknown_inbound");
    expectDispatchError(() => journal.recordAttempt(999), "journal_unknown_inbound");
    expectDispatchError(
      () => journal.markAnswered([999], { channel: "http", chatId: "c", parts: [] }),
      "journal_unknown_inbound",
    );
  });

  it("lists pending messages in the order they were received, across chats", () => {
    const ids = ["alice", "bob", "alice", "bob", "alice"].map(
      (chatId, index) => journal.recordInbound(message({ chatId, text: `${chatId} ${index}` })).id,
    );
    journal.markDelivered(ids[1]!);
    journal.markAnswered([ids[2]!], { channel: "http", chatId: "alice", parts: ["x"] });
    journal.markRejected(ids[3]!, "unknown_sender", "no");
    const pending = journal.pendingInbound();
    expect(pending.map((row) => row.id)).toEqual([ids[0], ids[1], ids[4]]);
    expect(pending.map((row) => row.status)).toEqual(["received", "delivered", "received"]);
    expect(pending.filter((row) => row.chatId === "alice").map((row) => row.text)).toEqual([
      "alice 0",
      "alice 4",
    ]);
  });
});

describe("markAnswered and the outbox", () => {
  it("gives the last message of a turn the outbox rows, and answers every message of it", () => {
    const a = journal.recordInbound(message({ externalId: "t-a" }));
    const b = journal.recordInbound(message({ externalId: "t-b" }));
    journal.markDelivered(a.id);
    journal.markDelivered(b.id);
    clock.advance(5);
    const rows = journal.markAnswered([a.id, b.id], {
      channel: "http",
      chatId: "+1555",
      parts: ["one", "two", "three"],
    });
    expect(rows).toEqual(
      [0, 1, 2].map((part) => ({
        id: part + 1,
        inboundId: b.id,
        part,
        channel: "http",
        chatId: "+1555",
        text: ["one", "two", "three"][part],
        status: "pending",
        attempts: 0,
        createdAt: new Date(clock.now()),
      })),
    );
    expect(journal.findByExternalId("http", "t-a")).toMatchObject({
      status: "answered",
      answeredBy: b.id,
    });
    expect(journal.findByExternalId("http", "t-b")).toMatchObject({
      status: "answered",
      answeredBy: b.id,
    });
    // A redelivery of the first message gets the turn's reply, held by the last.
    expect(journal.recordInbound(message({ externalId: "t-a" })).reply).toEqual([
      "one",
      "two",
      "three",
    ]);
  });

  it("answers with silence: messages answered, no outbox rows", () => {
    const { id } = journal.recordInbound(message({ externalId: "quiet" }));
    expect(journal.markAnswered([id], { channel: "http", chatId: "c", parts: [] })).toEqual([]);
    expect(journal.counts().inbound.answered).toBe(1);
    expect(tableCount("outbox")).toBe(0);
    expect(journal.recordInbound(message({ externalId: "quiet" })).reply).toEqual([]);
  });

  it("refuses to answer a message twice and rolls the whole turn back", () => {
    const a = journal.recordInbound(message({ externalId: "x-a" }));
    const b = journal.recordInbound(message({ externalId: "x-b" }));
    journal.markAnswered([a.id], { channel: "http", chatId: "c", parts: ["first"] });
    const error = expectDispatchError(
      () => journal.markAnswered([b.id, a.id], { channel: "http", chatId: "c", parts: ["2nd"] }),
      "journal_conflict",
    );
    expect(error.message).toContain("already answered");
    expect(journal.findByExternalId("http", "x-b")?.status).toBe("received");
    expect(journal.unsentOutbox().map((row) => row.text)).toEqual(["first"]);
    expectDispatchError(
      () => journal.markAnswered([], { channel: "http", chatId: "c", parts: [] }),
      "journal_conflict",
    );
  });

  it("moves parts pending -> failed -> sent, and pending -> abandoned", () => {
    const { id } = journal.recordInbound(message());
    journal.markAnswered([id], { channel: "imessage", chatId: "c", parts: ["p0", "p1", "p2"] });
    clock.advance(100);
    journal.markSendFailed(id, 0, "osascript exited 1");
    expect(journal.unsentOutbox()[0]).toMatchObject({
      part: 0,
      status: "failed",
      attempts: 1,
      error: "osascript exited 1",
    });
    clock.advance(100);
    journal.markSent(id, 0);
    journal.abandon(id, 2, "older than the resend bound");
    const unsent = journal.unsentOutbox();
    expect(unsent.map((row) => [row.part, row.status])).toEqual([[1, "pending"]]);
    expect(journal.counts().outbox).toEqual({ pending: 1, sent: 1, failed: 0, abandoned: 1 });
    const part0 = db!.prepare("SELECT * FROM outbox WHERE part = 0").get() as {
      attempts: number;
      sent_at: number;
      error: string | null;
    };
    expect(part0).toMatchObject({ attempts: 2, sent_at: clock.now(), error: null });
    // Terminal states stay terminal.
    journal.markSent(id, 2);
    journal.markSendFailed(id, 0, "late failure");
    expect(journal.counts().outbox).toEqual({ pending: 1, sent: 1, failed: 0, abandoned: 1 });
  });

  it("lists unsent parts by message, then part", () => {
    const first = journal.recordInbound(message());
    const second = journal.recordInbound(message());
    journal.markAnswered([second.id], { channel: "http", chatId: "c", parts: ["s0", "s1"] });
    journal.markAnswered([first.id], { channel: "http", chatId: "c", parts: ["f0", "f1"] });
    journal.markSendFailed(second.id, 1, "boom");
    expect(journal.unsentOutbox().map((row) => row.text)).toEqual(["f0", "f1", "s0", "s1"]);
  });

  it("throws journal_unknown_outbox for a part that was never recorded", () => {
    const { id } = journal.recordInbound(message());
    journal.markAnswered([id], { channel: "http", chatId: "c", parts: ["only"] });
    expectDispatchError(() => journal.markSent(id, 1), "journal_unknown_outbox");
    expectDispatchError(() => journal.markSendFailed(id, 5, "x"), "journal_unknown_outbox");
    expectDispatchError(() => journal.abandon(999, 0, "x"), "journal_unknown_outbox");
  });
});

describe("counts", () => {
  it("counts every status, zero included", () => {
    expect(journal.counts()).toEqual({
      inbound: { received: 0, delivered: 0, answered: 0, rejected: 0 },
      outbox: { pending: 0, sent: 0, failed: 0, abandoned: 0 },
    });
    const ids = [1, 2, 3, 4].map(() => journal.recordInbound(message()).id);
    journal.markDelivered(ids[1]!);
    journal.markAnswered([ids[2]!], { channel: "http", chatId: "c", parts: ["a", "b"] });
    journal.markRejected(ids[3]!, "x", "y");
    journal.markSent(ids[2]!, 0);
    expect(journal.counts()).toEqual({
      inbound: { received: 1, delivered: 1, answered: 1, rejected: 1 },
      outbox: { pending: 1, sent: 1, failed: 0, abandoned: 0 },
    });
  });
});

describe("prune", () => {
  function answeredAndSent(externalId: string, parts = ["reply"]): number {
    const { id } = journal.recordInbound(message({ externalId }));
    journal.markAnswered([id], { channel: "http", chatId: "c", parts });
    parts.forEach((_part, index) => journal.markSent(id, index));
    return id;
  }

  it("deletes old answered and rejected messages with their finished replies, nothing else", () => {
    answeredAndSent("old-sent", ["a", "b"]);
    const oldAbandoned = journal.recordInbound(message({ externalId: "old-abandoned" }));
    journal.markAnswered([oldAbandoned.id], { channel: "http", chatId: "c", parts: ["x"] });
    journal.abandon(oldAbandoned.id, 0, "client gone");
    const oldRejected = journal.recordInbound(message({ externalId: "old-rejected" }));
    journal.markRejected(oldRejected.id, "unknown_sender", "no");
    const oldPendingReply = journal.recordInbound(message({ externalId: "old-pending-reply" }));
    journal.markAnswered([oldPendingReply.id], { channel: "http", chatId: "c", parts: ["p"] });
    const oldFailedReply = journal.recordInbound(message({ externalId: "old-failed-reply" }));
    journal.markAnswered([oldFailedReply.id], { channel: "http", chatId: "c", parts: ["f"] });
    journal.markSendFailed(oldFailedReply.id, 0, "boom");
    journal.recordInbound(message({ externalId: "old-received" }));
    const oldDelivered = journal.recordInbound(message({ externalId: "old-delivered" }));
    journal.markDelivered(oldDelivered.id);

    clock.advance(DEFAULT_RETENTION_MS + 1);
    answeredAndSent("recent");

    expect(journal.prune()).toEqual({ inbound: 3, outbox: 3 });
    const left = db!.prepare("SELECT external_id FROM inbound ORDER BY id").pluck().all();
    expect(left).toEqual([
      "old-pending-reply",
      "old-failed-reply",
      "old-received",
      "old-delivered",
      "recent",
    ]);
    expect(journal.findByExternalId("http", "old-sent")).toBeUndefined();
    expect(db!.pragma("foreign_key_check")).toEqual([]);
  });

  it("prunes a turn's messages together, and only when the newest is old enough", () => {
    const a = journal.recordInbound(message({ externalId: "g-a" }));
    clock.advance(DAY_MS);
    const b = journal.recordInbound(message({ externalId: "g-b" }));
    journal.markAnswered([a.id, b.id], { channel: "http", chatId: "c", parts: ["r"] });
    journal.markSent(b.id, 0);
    clock.advance(DAY_MS);
    expect(journal.prune({ olderThanMs: 2 * DAY_MS })).toEqual({ inbound: 0, outbox: 0 });
    expect(journal.prune({ olderThanMs: DAY_MS - 1 })).toEqual({ inbound: 2, outbox: 1 });
    expect(tableCount("inbound")).toBe(0);
  });

  it("refuses a negative retention", () => {
    expectDispatchError(() => journal.prune({ olderThanMs: -1 }), "journal_invalid_retention");
  });
});

describe("close", () => {
  it("closes the database; later calls fail with a journal error", () => {
    journal.close();
    expect(db!.open).toBe(false);
    journal.close(); // twice is fine
    const error = expectDispatchError(() => journal.counts(), "journal_failed");
    expect(error.message).toContain(path);
  });

  it("holds a database another connection reads as committed", () => {
    journal.recordInbound(message({ externalId: "seen" }), { cursor: "9" });
    const reader = new BetterSqlite3(path, { readonly: true });
    try {
      expect(reader.prepare("SELECT value FROM cursors").pluck().get()).toBe("9");
      expect(reader.prepare("SELECT external_id FROM inbound").pluck().all()).toEqual(["seen"]);
    } finally {
      reader.close();
    }
  });

  it("saves a cursor that no message carries", () => {
    journal.setCursor("imessage", '{"rowId":7}');
    expect(journal.cursor("imessage")).toBe('{"rowId":7}');
    journal.setCursor("imessage", '{"rowId":9}');
    expect(journal.cursor("imessage")).toBe('{"rowId":9}');
    expect(journal.cursor("signal")).toBeUndefined();
  });
});

describe("reply events (GET /v1/events, the reply webhook)", () => {
  it("lists a channel's reply parts after an id, with the messages each answers, by their client ids", () => {
    const a = journal.recordInbound(message({ externalId: "client-a" }));
    const b = journal.recordInbound(message({ externalId: undefined }));
    journal.markAnswered([a.id, b.id], {
      channel: "http",
      chatId: "+15551234567",
      parts: ["x", "y"],
    });
    const c = journal.recordInbound(message({ channel: "imessage" }));
    journal.markAnswered([c.id], { channel: "imessage", chatId: "+15551234567", parts: ["z"] });
    const events = journal.replyEventsAfter("http", 0, 10);
    expect(events).toEqual([
      {
        id: 1,
        inboundId: b.id,
        part: 0,
        parts: 2,
        chatId: "+15551234567",
        text: "x",
        messageIds: ["client-a", b.uuid],
        createdAt: new Date(clock.now()),
      },
      expect.objectContaining({ id: 2, part: 1, text: "y" }),
    ]);
    expect(journal.replyEventsAfter("http", 1, 10).map((event) => event.id)).toEqual([2]);
    expect(journal.replyEventsAfter("http", 0, 1).map((event) => event.id)).toEqual([1]);
    expect(journal.lastReplyEventId("http")).toBe(2);
    expect(journal.replyEvent(3)).toMatchObject({ text: "z", chatId: "+15551234567" });
    expect(journal.replyEvent(99)).toBeUndefined();
  });
});
