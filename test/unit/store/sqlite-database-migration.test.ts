import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createMemoryLogger } from "../../support/memory-logger.js";
import {
  openStateDatabase,
  SCHEMA_VERSION,
  type Database,
} from "../../../src/store/sqlite-database.js";
import { createSqliteJournal } from "../../../src/store/sqlite-journal.js";
import { createSqliteTranscriptStore } from "../../../src/store/sqlite-transcript-store.js";

const JOHN = { projectKey: "-home-me-transcripts-john-doe", sessionId: "s-1" };
const JOHN_MOVED = { projectKey: "-home-me-elsewhere-john-doe", sessionId: "s-1" };
const JANE = { projectKey: "-home-me-transcripts-jane-roe", sessionId: "s-2" };

let folder: string;
let path: string;
let db: Database | undefined;

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-migrate-"));
  path = join(folder, "journal.db");
});
afterEach(async () => {
  db?.close();
  await rm(folder, { recursive: true, force: true });
});

const indexesOf = (database: Database, table: string): string[] =>
  database
    .prepare<[string], string>(
      `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL
       ORDER BY name`,
    )
    .pluck()
    .all(table);

/**
 * A journal at schema version 2, with transcripts in it: today's schema less what versions 3
 * (an index), 4 (the envelope nonce) and 5 (the activity table) added.
 */
async function versionTwoJournal(): Promise<void> {
  const old = openStateDatabase({ path, logger: createMemoryLogger() });
  const transcripts = createSqliteTranscriptStore({ db: old });
  await transcripts.append(JOHN, [
    { type: "user", uuid: "u1" },
    { type: "assistant", uuid: "a1" },
  ]);
  await transcripts.append(JOHN_MOVED, [{ type: "user", uuid: "u1" }]);
  await transcripts.append(JANE, [{ type: "user", uuid: "u9" }]);
  old.exec("DROP INDEX transcript_keys_session; DROP TABLE activity");
  old.exec("DROP TABLE registry; DROP TABLE registry_import");
  old.exec("ALTER TABLE inbound DROP COLUMN envelope_nonce");
  old.pragma("user_version = 2");
  old.close();
}

describe("schema migration 2 -> 3", () => {
  it("indexes transcript_keys by session id, and keeps every transcript", async () => {
    await versionTwoJournal();
    const logger = createMemoryLogger();
    db = openStateDatabase({ path, logger });

    expect(db.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
    expect(indexesOf(db, "transcript_keys")).toEqual(["transcript_keys_session"]);
    expect(logger.records).toContainEqual(
      expect.objectContaining({
        message: "journal-migrate",
        fields: { path, from: 2, to: SCHEMA_VERSION },
      }),
    );
    const transcripts = createSqliteTranscriptStore({ db });
    expect(await transcripts.load(JOHN)).toEqual([
      { type: "user", uuid: "u1" },
      { type: "assistant", uuid: "a1" },
    ]);
    expect(await transcripts.load(JANE)).toEqual([{ type: "user", uuid: "u9" }]);
    // The project that holds the most of the session's messages.
    expect(await transcripts.messageCount("s-1")).toBe(2);
  });

  it("looks a session's projects up through the index, not by scanning transcript_keys", () => {
    db = openStateDatabase({ path, logger: createMemoryLogger() });
    const plan = db
      .prepare(
        `EXPLAIN QUERY PLAN
         SELECT project_key FROM transcript_keys WHERE session_id = ? AND subpath = ''`,
      )
      .all("s-1") as { detail: string }[];
    expect(plan.map((step) => step.detail).join("\n")).toContain(
      "USING INDEX transcript_keys_session",
    );
  });

  it("is not run twice: a reopened journal is left as it was", () => {
    db = openStateDatabase({ path, logger: createMemoryLogger() });
    db.close();
    const logger = createMemoryLogger();
    db = openStateDatabase({ path, logger });
    expect(logger.records.map((record) => record.message)).not.toContain("journal-migrate");
    expect(indexesOf(db, "transcript_keys")).toEqual(["transcript_keys_session"]);
  });
});

describe("schema migration 3 -> 4", () => {
  /** A journal at schema version 3 holding a message handed over before: version 5 less the column and the activity table. */
  async function versionThreeJournal(): Promise<void> {
    const old = openStateDatabase({ path, logger: createMemoryLogger() });
    const journal = createSqliteJournal({ db: old });
    const { id } = await journal.recordInbound({
      channel: "http",
      chatId: "+15551234567",
      text: "sent before the upgrade",
      externalId: "before",
      receivedAt: new Date(),
    });
    await journal.markDelivered(id);
    old.exec("ALTER TABLE inbound DROP COLUMN envelope_nonce; DROP TABLE activity");
    old.exec("DROP TABLE registry; DROP TABLE registry_import");
    old.pragma("user_version = 3");
    old.close();
  }

  it("adds the envelope nonce to inbound, unset in the rows it finds, and keeps them", async () => {
    expect(SCHEMA_VERSION).toBe(7);
    await versionThreeJournal();
    const logger = createMemoryLogger();
    db = openStateDatabase({ path, logger });
    expect(logger.records).toContainEqual(
      expect.objectContaining({
        message: "journal-migrate",
        fields: { path, from: 3, to: SCHEMA_VERSION },
      }),
    );
    const journal = createSqliteJournal({ db });
    const [row] = await journal.pendingInbound();
    expect(row).toMatchObject({ externalId: "before", status: "delivered" });
    expect(row).not.toHaveProperty("envelopeNonce");

    await journal.recordEnvelopeNonce(row!.id, "0123456789abcdef01234567");
    expect((await journal.findByExternalId("http", "before"))?.envelopeNonce).toBe(
      "0123456789abcdef01234567",
    );
  });
});

describe("schema migration 4 -> 5", () => {
  it("adds the activity table, indexed by time, and keeps what was there", async () => {
    const old = openStateDatabase({ path, logger: createMemoryLogger() });
    await createSqliteTranscriptStore({ db: old }).append(JOHN, [{ type: "user", uuid: "u1" }]);
    old.exec("DROP TABLE activity; DROP TABLE registry; DROP TABLE registry_import");
    old.pragma("user_version = 4");
    old.close();

    const logger = createMemoryLogger();
    db = openStateDatabase({ path, logger });
    expect(logger.records).toContainEqual(
      expect.objectContaining({
        message: "journal-migrate",
        fields: { path, from: 4, to: SCHEMA_VERSION },
      }),
    );
    expect(indexesOf(db, "activity")).toEqual(["activity_at"]);
    expect(await createSqliteTranscriptStore({ db }).load(JOHN)).toEqual([
      { type: "user", uuid: "u1" },
    ]);
  });
});

describe("schema migration 5 -> 6", () => {
  it("numbers the outbox rows in the order they were recorded, never reusing a number", async () => {
    const old = openStateDatabase({ path, logger: createMemoryLogger() });
    // The outbox as versions 1 to 5 had it: keyed by (inbound_id, part), no id.
    old.exec(`
      DROP TABLE outbox;
      CREATE TABLE outbox (
        inbound_id INTEGER NOT NULL REFERENCES inbound (id),
        part       INTEGER NOT NULL CHECK (part >= 0),
        channel    TEXT NOT NULL,
        chat_id    TEXT NOT NULL,
        text       TEXT NOT NULL,
        status     TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'abandoned')),
        attempts   INTEGER NOT NULL DEFAULT 0,
        error      TEXT,
        created_at INTEGER NOT NULL,
        sent_at    INTEGER,
        PRIMARY KEY (inbound_id, part)
      );
      CREATE INDEX outbox_status ON outbox (status);
      INSERT INTO inbound (id, uuid, channel, external_id, chat_id, text, received_at, status,
        answered_by, created_at, updated_at)
      VALUES (1, 'u-1', 'http', 'm-1', '+15551234567', 'hi', 1, 'answered', 1, 1, 1),
             (2, 'u-2', 'http', NULL, '+15551234567', 'and', 2, 'answered', 2, 2, 2);
      INSERT INTO outbox (inbound_id, part, channel, chat_id, text, status, created_at)
      VALUES (2, 0, 'http', '+15551234567', 'second', 'pending', 2),
             (1, 0, 'http', '+15551234567', 'first', 'sent', 1);
    `);
    old.exec("DROP TABLE registry; DROP TABLE registry_import");
    old.pragma("user_version = 5");
    old.close();

    db = openStateDatabase({ path, logger: createMemoryLogger() });
    expect(db.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
    const journal = createSqliteJournal({ db });
    // Recorded first, numbered first: (2, 0) went in before (1, 0).
    const events = await journal.replyEventsAfter("http", 0, 10);
    expect(events.map((event) => [event.id, event.text])).toEqual([
      [1, "second"],
      [2, "first"],
    ]);
    expect((await journal.replyEvent(2))?.messageIds).toEqual(["m-1"]);
    expect((await journal.replyEvent(1))?.messageIds).toEqual(["u-2"]);
    expect((await journal.unsentOutbox()).map((row) => row.text)).toEqual(["second"]);
    expect(indexesOf(db, "outbox")).toEqual(["outbox_channel", "outbox_status"]);
    // The deleted newest number is not given again.
    db.exec("DELETE FROM outbox WHERE id = 2");
    await journal.recordInbound({
      channel: "http",
      chatId: "+15551234567",
      text: "third",
      receivedAt: new Date(3),
    });
    const [row] = await journal.markAnswered([3], {
      channel: "http",
      chatId: "+15551234567",
      parts: ["third"],
    });
    expect(row!.id).toBe(3);
    expect(await journal.lastReplyEventId("http")).toBe(3);
    expect(await journal.lastReplyEventId("imessage")).toBe(0);
  });

  it("adds the registry tables, empty, and keeps what was there", async () => {
    const old = openStateDatabase({ path, logger: createMemoryLogger() });
    await createSqliteTranscriptStore({ db: old }).append(JOHN, [{ type: "user", uuid: "u1" }]);
    old.exec("DROP TABLE registry; DROP TABLE registry_import");
    old.pragma("user_version = 6");
    old.close();

    const logger = createMemoryLogger();
    db = openStateDatabase({ path, logger });
    expect(logger.records).toContainEqual(
      expect.objectContaining({
        message: "journal-migrate",
        fields: { path, from: 6, to: SCHEMA_VERSION },
      }),
    );
    expect(db.prepare("SELECT count(*) AS n FROM registry").get()).toEqual({ n: 0 });
    expect(db.prepare("SELECT count(*) AS n FROM registry_import").get()).toEqual({ n: 0 });
    // The chats of one person's session share its name: found by it, not unique per row.
    expect(indexesOf(db, "registry")).toContain("registry_session_name");
    expect(await createSqliteTranscriptStore({ db }).load(JOHN)).toEqual([
      { type: "user", uuid: "u1" },
    ]);
  });
});
