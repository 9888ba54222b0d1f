/**
 * The journal's way in, in the state database: messages recorded (deduplicated by channel and
 * external id, in one transaction with their channel's cursor), their states up to delivered or
 * rejected, replay attempts, and the cursors of polling channels. Part of `sqlite-journal.ts`.
 */
import { randomUUID } from "node:crypto";
import type { InboundMessage } from "../channels/channel.js";
import type { InboundAnswer, Journal, RecordInboundResult } from "./journal.js";
import {
  checkInbound,
  duplicateResult,
  toInboundRow,
  unknownInbound,
  type InboundRecord,
} from "./journal-rows.js";
import type { SqliteJournalContext } from "./sqlite-journal.js";

export type JournalInbox = Pick<
  Journal,
  | "recordInbound"
  | "markDelivered"
  | "markRejected"
  | "recordEnvelopeNonce"
  | "recordAttempt"
  | "pendingInbound"
  | "findByExternalId"
  | "answersTo"
  | "cursor"
  | "setCursor"
>;

export const OPEN = "('received', 'delivered')";

/**
 * Each method does its work when called, before it returns its promise, as the synchronous
 * journal did: a caller that reads the journal right after a write without waiting sees it.
 */
export function createSqliteJournalInbox(context: SqliteJournalContext): JournalInbox {
  const { db, clock, path, guard, run, durable } = context;

  const statements = guard("prepare statements for", () => ({
    insertInbound: db.prepare(
      `INSERT INTO inbound (uuid, channel, external_id, chat_id, sender, group_name, text,
         received_at, status, attempts, created_at, updated_at)
       VALUES (@uuid, @channel, @externalId, @chatId, @sender, @groupName, @text,
         @receivedAt, 'received', 0, @now, @now)`,
    ),
    byId: db.prepare<[number], InboundRecord>(`SELECT * FROM inbound WHERE id = ?`),
    byExternalId: db.prepare<[string, string], InboundRecord>(
      `SELECT * FROM inbound WHERE channel = ? AND external_id = ?`,
    ),
    replyOf: db
      .prepare<[number], string>(`SELECT text FROM outbox WHERE inbound_id = ? ORDER BY part`)
      .pluck(),
    upsertCursor: db.prepare(
      `INSERT INTO cursors (channel, value, updated_at) VALUES (@channel, @value, @now)
       ON CONFLICT (channel) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    ),
    cursor: db.prepare<[string], string>(`SELECT value FROM cursors WHERE channel = ?`).pluck(),
    deliver: db.prepare(
      `UPDATE inbound SET status = 'delivered', updated_at = @now
       WHERE id = @id AND status = 'received'`,
    ),
    reject: db.prepare(
      `UPDATE inbound SET status = 'rejected', error_code = @code, error_message = @message,
         updated_at = @now
       WHERE id = @id AND status IN ${OPEN}`,
    ),
    envelopeNonce: db.prepare(
      `UPDATE inbound SET envelope_nonce = @nonce, updated_at = @now WHERE id = @id`,
    ),
    attempt: db
      .prepare(
        `UPDATE inbound SET attempts = attempts + 1, updated_at = @now WHERE id = @id
         RETURNING attempts`,
      )
      .pluck(),
    pendingInbound: db.prepare<[], InboundRecord>(
      `SELECT * FROM inbound WHERE status IN ${OPEN} ORDER BY id`,
    ),
    pendingOfChat: db.prepare<[string], InboundRecord>(
      `SELECT * FROM inbound WHERE status IN ${OPEN} AND chat_id = ? ORDER BY id`,
    ),
  }));

  const record = db.transaction(
    (message: InboundMessage, cursor: string | undefined): RecordInboundResult => {
      const now = clock.now();
      // The cursor first: should the insert fail, the rollback must undo the cursor too.
      if (cursor !== undefined) {
        statements.upsertCursor.run({ channel: message.channel, value: cursor, now });
      }
      if (message.externalId !== undefined) {
        const existing = statements.byExternalId.get(message.channel, message.externalId);
        if (existing !== undefined) {
          return duplicateResult(
            existing,
            existing.status === "answered"
              ? statements.replyOf.all(existing.answered_by ?? existing.id)
              : undefined,
          );
        }
      }
      const uuid = randomUUID();
      const info = statements.insertInbound.run({
        uuid,
        channel: message.channel,
        externalId: message.externalId ?? null,
        chatId: message.chatId,
        sender: message.sender ?? null,
        groupName: message.groupName ?? null,
        text: message.text,
        receivedAt: message.receivedAt.getTime(),
        now,
      });
      return { id: Number(info.lastInsertRowid), uuid, duplicate: false, status: "received" };
    },
  );

  /** Runs an update of one inbound row; an id that matches no row is the caller's mistake. */
  const updateInbound = db.transaction((id: number, update: () => number) => {
    if (update() === 0 && statements.byId.get(id) === undefined) throw unknownInbound(id, path);
  });

  return {
    recordInbound(message, options = {}) {
      return run("write to", () => {
        checkInbound(message);
        return record(message, options.cursor);
      });
    },
    markDelivered(id) {
      return run("write to", () =>
        updateInbound(id, () => statements.deliver.run({ id, now: clock.now() }).changes),
      );
    },
    markRejected(id, code, message) {
      return run("write to", () =>
        updateInbound(
          id,
          () => statements.reject.run({ id, code, message, now: clock.now() }).changes,
        ),
      );
    },
    recordEnvelopeNonce(id, nonce) {
      return run("write to", () =>
        updateInbound(
          id,
          () => statements.envelopeNonce.run({ id, nonce, now: clock.now() }).changes,
        ),
      );
    },
    recordAttempt(id) {
      return run("write to", () => {
        const attempts = durable(
          () => statements.attempt.get({ id, now: clock.now() }) as number | undefined,
        );
        if (attempts === undefined) throw unknownInbound(id, path);
        return attempts;
      });
    },
    pendingInbound(options = {}) {
      return run("read", () =>
        (options.chatId === undefined
          ? statements.pendingInbound.all()
          : statements.pendingOfChat.all(options.chatId)
        ).map(toInboundRow),
      );
    },
    findByExternalId(channel, externalId) {
      return run("read", () => {
        const row = statements.byExternalId.get(channel, externalId);
        return row === undefined ? undefined : toInboundRow(row);
      });
    },
    answersTo(inboundIds) {
      return run("read", () =>
        inboundIds.flatMap((id): InboundAnswer[] => {
          const row = statements.byId.get(id);
          if (row === undefined) return [];
          const reply =
            row.status === "answered" ? statements.replyOf.all(row.answered_by ?? row.id) : [];
          const failed = row.status === "answered" && row.error_code === "agent_error";
          return [
            {
              id,
              chatId: row.chat_id,
              status: row.status,
              reply,
              ...(failed ? { failure: row.error_message ?? "no detail given" } : {}),
            },
          ];
        }),
      );
    },
    cursor(channel) {
      return run("read", () => statements.cursor.get(channel));
    },
    setCursor(channel, value) {
      return run("write to", () => {
        statements.upsertCursor.run({ channel, value, now: clock.now() });
      });
    },
  };
}
