import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  openChatDbReader,
  resolveStart,
  type ChatDbReader,
} from "../../../src/channels/imessage/chat-db-reader.js";
import { formatCursor } from "../../../src/channels/imessage/cursor.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import {
  APPLE_EPOCH_MS,
  PHOTO,
  createChatDb,
  removeChatDb,
  type ChatDbFixture,
} from "../../support/chat-db.js";

/** Every `new Database(file, options)`, to check how the reader opens chat.db. */
const opened = vi.hoisted(() => [] as [string, unknown][]);
vi.mock("better-sqlite3", async (importOriginal) => {
  const actual = await importOriginal<{ default: typeof Database }>();
  function RecordingDatabase(file: string, options?: Database.Options) {
    opened.push([file, options]);
    return new actual.default(file, options);
  }
  return { default: RecordingDatabase };
});

const NOW_MS = Date.parse("2026-03-01T12:00:00.000Z");
const BACKFILL_MS = 300_000;

let directory: string;
let dbPath: string;
let fixture: ChatDbFixture;
let reader: ChatDbReader | undefined;

beforeEach(() => {
  directory = mkdtempSync(path.join(tmpdir(), "dispatch-chat-db-"));
  dbPath = path.join(directory, "chat.db");
  fixture = createChatDb(dbPath, { now: () => NOW_MS });
});

afterEach(() => {
  reader?.close();
  reader = undefined;
  fixture.close();
  rmSync(directory, { recursive: true, force: true });
});

function open(): ChatDbReader {
  reader = openChatDbReader({ dbPath });
  return reader;
}

function start(cursor: string | undefined) {
  const logger = createMemoryLogger();
  const position = resolveStart(open(), cursor, {
    nowMs: NOW_MS,
    maxBackfillAgeMs: BACKFILL_MS,
    logger,
  });
  return { position, logger };
}

function expectUnavailable(run: () => unknown, ...phrases: string[]) {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(DispatchError);
    expect((error as DispatchError).code).toBe("imessage_unavailable");
    for (const phrase of phrases) expect((error as Error).message).toContain(phrase);
    return;
  }
  throw new Error("expected imessage_unavailable");
}

describe("openChatDbReader", () => {
  it("fails with what to do when the database is missing", () => {
    expectUnavailable(
      () => openChatDbReader({ dbPath: path.join(directory, "missing.db") }),
      "There is no Messages database",
      "channels.imessage.enabled",
    );
  });

  it("fails with the Full Disk Access fix when the file cannot be opened", () => {
    const folder = path.join(directory, "a-folder.db");
    mkdirSync(folder);
    expectUnavailable(
      () => openChatDbReader({ dbPath: folder }),
      "Full Disk Access",
      "System Settings → Privacy & Security → Full Disk Access",
      "channels.imessage.enabled",
    );
  });

  it("fails when the file is not a SQLite database or not a Messages one", () => {
    const text = path.join(directory, "notes.db");
    writeFileSync(text, "x".repeat(4096));
    expectUnavailable(() => openChatDbReader({ dbPath: text }), "channels.imessage.dbPath");
    const other = path.join(directory, "other.db");
    const db = new Database(other);
    db.exec("CREATE TABLE message (ROWID INTEGER PRIMARY KEY, body TEXT)");
    db.close();
    expectUnavailable(() => openChatDbReader({ dbPath: other }), "`message`", "`guid`");
  });

  it("opens the file read-only and never creates it", () => {
    const before = opened.length;
    open();
    const options = opened.slice(before).find(([file]) => file === dbPath)?.[1];
    expect(options).toMatchObject({ readonly: true, fileMustExist: true });
    // Messages keeps writing while dispatch reads.
    expect(fixture.text("+15551234567", "still writable by Messages").rowId).toBe(1);
    expect(reader?.readAfter(0, 10)).toHaveLength(1);
  });
});

describe("readAfter", () => {
  it("reads one-to-one and group rows in ROWID order with their chat and handle", () => {
    fixture.text("+15551234567", "hello");
    const { chat } = fixture.groupChat("chat123456789", ["+15557654321", "+15551234567"], "Family");
    fixture.groupText(chat, "+15557654321", "hi all");
    const rows = open().readAfter(0, 10);
    expect(rows.map((row) => row.rowId)).toEqual([1, 2]);
    expect(rows[0]).toMatchObject({
      text: "hello",
      handle: "+15551234567",
      chatGuid: "iMessage;-;+15551234567",
      chatIdentifier: "+15551234567",
      chatStyle: 45,
      isFromMe: 0,
      associatedMessageType: 0,
      attachmentNames: "[]",
    });
    expect(rows[0]?.attributedBody).toBeInstanceOf(Buffer);
    expect(rows[1]).toMatchObject({
      text: "hi all",
      handle: "+15557654321",
      chatGuid: "iMessage;+;chat123456789",
      chatIdentifier: "chat123456789",
      chatStyle: 43,
      chatDisplayName: "Family",
    });
  });

  it("keeps a row without a handle (LEFT JOIN) and one without a chat", () => {
    const { chat } = fixture.groupChat("chat1", ["+15557654321"]);
    fixture.insertMessage({ chat, text: "no handle row" });
    fixture.text("+15551234567", "no chat yet", { withoutChatJoin: true });
    const rows = open().readAfter(0, 10);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ handle: null, chatIdentifier: "chat1" });
    expect(rows[1]).toMatchObject({ handle: "+15551234567", chatGuid: null });
  });

  it("names attachments in order and honours the batch limit", () => {
    fixture.attachmentMessage("+15551234567", [PHOTO, { ...PHOTO, transferName: "b.png" }]);
    for (let index = 0; index < 5; index += 1) fixture.text("+15551234567", `m${index}`);
    const rows = open().readAfter(0, 3);
    expect(rows.map((row) => row.rowId)).toEqual([1, 2, 3]);
    expect(JSON.parse(rows[0]?.attachmentNames ?? "null")).toEqual(["IMG_0042.jpeg", "b.png"]);
    expect(
      open()
        .readAfter(3, 10)
        .map((row) => row.rowId),
    ).toEqual([4, 5, 6]);
  });

  it("sees rows Messages writes while it is open (WAL)", () => {
    const current = open();
    expect(current.readAfter(0, 10)).toEqual([]);
    fixture.text("+15551234567", "after open");
    expect(current.readAfter(0, 10).map((row) => row.text)).toEqual(["after open"]);
  });
});

describe("resolveStart", () => {
  it("starts from now on the first run, never from the history", () => {
    for (let index = 0; index < 3; index += 1) fixture.text("+15551234567", `old ${index}`);
    const { position, logger } = start(undefined);
    expect(position).toEqual({ rowId: 3, reason: "first-run" });
    expect(logger.records.some((record) => record.message === "imessage-cursor-start")).toBe(true);
  });

  it("counts deleted newest rows: the sequence, not MAX(ROWID)", () => {
    fixture.text("+15551234567", "one");
    const two = fixture.text("+15551234567", "two");
    fixture.db.prepare("DELETE FROM message WHERE ROWID = ?").run(two.rowId);
    expect(start(undefined).position.rowId).toBe(2);
  });

  it("resumes after the cursor's row on the same database", () => {
    for (let index = 0; index < 4; index += 1) fixture.text("+15551234567", `m${index}`);
    const dbId = open().dbId;
    reader?.close();
    const { position } = start(formatCursor({ rowId: 2, dbId }));
    expect(position).toEqual({ rowId: 2, reason: "cursor" });
    expect(reader?.readAfter(position.rowId, 10).map((row) => row.text)).toEqual(["m2", "m3"]);
  });

  it("recovers from the backfill window when the file was replaced", () => {
    fixture.text("+15551234567", "an hour ago", { dateMs: NOW_MS - 3_600_000 });
    fixture.text("+15551234567", "six minutes ago", { dateMs: NOW_MS - 360_000 });
    fixture.text("+15551234567", "four minutes ago", { dateMs: NOW_MS - 240_000 });
    fixture.text("+15551234567", "just now", { dateMs: NOW_MS - 1_000 });
    // ROWID 3 of another file says nothing about this one: the window decides, not the cursor.
    const { position, logger } = start(formatCursor({ rowId: 3, dbId: "another-file" }));
    expect(position).toEqual({ rowId: 2, reason: "replaced" });
    const warning = logger.records.find(
      (record) => record.message === "imessage-database-replaced",
    );
    expect(warning?.level).toBe("warn");
    expect(reader?.readAfter(position.rowId, 10).map((row) => row.text)).toEqual([
      "four minutes ago",
      "just now",
    ]);
  });

  it("recovers when the cursor is past the newest ROWID (replaced in place)", () => {
    fixture.text("+15551234567", "old", { dateMs: NOW_MS - 3_600_000 });
    fixture.text("+15551234567", "recent", { dateMs: NOW_MS - 10_000 });
    const dbId = open().dbId;
    reader?.close();
    const { position } = start(formatCursor({ rowId: 500, dbId }));
    expect(position).toEqual({ rowId: 1, reason: "replaced" });
  });

  it("recovers from the window for an unreadable cursor, and from now when nothing is recent", () => {
    fixture.text("+15551234567", "old", { dateMs: NOW_MS - 3_600_000 });
    expect(start("not json").position).toEqual({ rowId: 1, reason: "unreadable-cursor" });
    reader?.close();
    expect(start('{"rowId":-1,"dbId":""}').position.reason).toBe("unreadable-cursor");
  });

  it("reads the window in the older seconds date format too", () => {
    fixture.text("+15551234567", "old", { dateMs: NOW_MS - 3_600_000, dateInSeconds: true });
    fixture.text("+15551234567", "recent", { dateMs: NOW_MS - 5_000, dateInSeconds: true });
    expect(open().windowStart(NOW_MS, BACKFILL_MS)).toBe(1);
    expect(open().windowStart(NOW_MS, 0)).toBe(2);
  });
});

describe("file identity and chat lookup", () => {
  it("notices a file replaced at the same path", () => {
    fixture.text("+15551234567", "first file");
    const current = open();
    expect(current.isCurrentFile()).toBe(true);
    fixture.close();
    const replacement = path.join(directory, "replacement.db");
    createChatDb(replacement).close();
    removeChatDb(dbPath);
    renameSync(replacement, dbPath);
    fixture = createChatDb(path.join(directory, "unused.db"));
    expect(current.isCurrentFile()).toBe(false);
    const reopened = openChatDbReader({ dbPath });
    expect(reopened.dbId).not.toBe(current.dbId);
    reopened.close();
  });

  it("finds where replies to a chat id go", () => {
    fixture.oneToOneChat("+15551234567");
    fixture.groupChat("chat987", ["+15557654321"]);
    const current = open();
    expect(current.findChat("chat987")).toEqual({
      chatId: "chat987",
      kind: "chat",
      recipient: "iMessage;+;chat987",
    });
    expect(current.findChat("+15551234567")).toMatchObject({ kind: "buddy" });
    expect(current.findChat("nobody")).toBeUndefined();
  });

  it("APPLE_EPOCH_MS is 2001-01-01", () => {
    expect(new Date(APPLE_EPOCH_MS).toISOString()).toBe("2001-01-01T00:00:00.000Z");
  });
});
