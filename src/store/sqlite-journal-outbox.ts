/**
 * The journal's way out, in the state database: a turn's reply answers its messages and is
 * recorded part by part in one transaction, fsynced before it is sent; each part then moves to
 * sent, failed or abandoned. Part of `sqlite-journal.ts`.
 */
import type { Journal, OutboxRow, Reply, ReplyEvent } from "./journal.js";
import {
  answeredTwice,
  checkAnswered,
  toOutboxRow,
  unknownInbound,
  unknownOutbox,
  type InboundRecord,
  type OutboxRecord,
} from "./journal-rows.js";
import type { SqliteJournalContext } from "./sqlite-journal.js";

export type JournalOutbox = Pick<
  Journal,
  | "markAnswered"
  | "markSent"
  | "markSendFailed"
  | "abandon"
  | "unsentOutbox"
  | "replyEventsAfter"
  | "replyEvent"
  | "lastReplyEventId"
>;

export const UNSENT = "('pending', 'failed')";

/** Each method does its work when called, before it returns its promise. */
/** The error code of messages a failed turn answered (`Reply.failure`). */
export const AGENT_ERROR = "agent_error";

export function createSqliteJournalOutbox(context: SqliteJournalContext): JournalOutbox {
  const { db, clock, path, guard, run, durable } = context;

  const statements = guard("prepare statements for", () => ({
    byId: db.prepare<[number], Pick<InboundRecord, "status">>(
      `SELECT status FROM inbound WHERE id = ?`,
    ),
    answer: db.prepare(
      `UPDATE inbound SET status = 'answered', answered_by = @answeredBy, updated_at = @now,
         error_code = @errorCode, error_message = @failure
       WHERE id = @id`,
    ),
    insertOutbox: db.prepare(
      `INSERT INTO outbox (inbound_id, part, channel, chat_id, text, status, attempts, created_at)
       VALUES (@inboundId, @part, @channel, @chatId, @text, 'pending', 0, @now)`,
    ),
    outboxOf: db.prepare<[number], OutboxRecord>(
      `SELECT * FROM outbox WHERE inbound_id = ? ORDER BY part`,
    ),
    outboxExists: db
      .prepare<[number, number], number>(`SELECT 1 FROM outbox WHERE inbound_id = ? AND part = ?`)
      .pluck(),
    sent: db.prepare(
      `UPDATE outbox SET status = 'sent', attempts = attempts + 1, error = NULL, sent_at = @now
       WHERE inbound_id = @inboundId AND part = @part AND status IN ${UNSENT}`,
    ),
    sendFailed: db.prepare(
      `UPDATE outbox SET status = 'failed', attempts = attempts + 1, error = @error
       WHERE inbound_id = @inboundId AND part = @part AND status IN ${UNSENT}`,
    ),
    abandon: db.prepare(
      `UPDATE outbox SET status = 'abandoned', error = @error
       WHERE inbound_id = @inboundId AND part = @part AND status IN ${UNSENT}`,
    ),
    unsentOutbox: db.prepare<[], OutboxRecord>(
      `SELECT * FROM outbox WHERE status IN ${UNSENT} ORDER BY inbound_id, part`,
    ),
    outboxAfter: db.prepare<[string, number, number], OutboxRecord>(
      `SELECT * FROM outbox WHERE channel = ? AND id > ? ORDER BY id LIMIT ?`,
    ),
    outboxById: db.prepare<[number], OutboxRecord>(`SELECT * FROM outbox WHERE id = ?`),
    lastOutboxId: db
      .prepare<[string], number | null>(`SELECT max(id) FROM outbox WHERE channel = ?`)
      .pluck(),
    partsOf: db
      .prepare<[number], number>(`SELECT count(*) FROM outbox WHERE inbound_id = ?`)
      .pluck(),
    answeredMessageIds: db
      .prepare<[number], string>(
        `SELECT coalesce(external_id, uuid) FROM inbound WHERE answered_by = ? ORDER BY id`,
      )
      .pluck(),
  }));

  const toReplyEvent = (row: OutboxRecord): ReplyEvent => ({
    id: row.id,
    inboundId: row.inbound_id,
    part: row.part,
    parts: statements.partsOf.get(row.inbound_id) ?? 1,
    chatId: row.chat_id,
    text: row.text,
    messageIds: statements.answeredMessageIds.all(row.inbound_id),
    createdAt: new Date(row.created_at),
  });

  const answer = db.transaction((inboundIds: readonly number[], reply: Reply): OutboxRow[] => {
    const now = clock.now();
    const answeredBy = inboundIds.at(-1)!;
    for (const id of new Set(inboundIds)) {
      const row = statements.byId.get(id);
      if (row === undefined) throw unknownInbound(id, path);
      if (row.status === "answered" || row.status === "rejected") {
        throw answeredTwice(id, row.status, path);
      }
      statements.answer.run({
        id,
        answeredBy,
        now,
        errorCode: reply.failure === undefined ? null : AGENT_ERROR,
        failure: reply.failure ?? null,
      });
    }
    reply.parts.forEach((text, part) => {
      statements.insertOutbox.run({
        inboundId: answeredBy,
        part,
        channel: reply.channel,
        chatId: reply.chatId,
        text,
        now,
      });
    });
    return statements.outboxOf.all(answeredBy).map(toOutboxRow);
  });

  const updateOutbox = db.transaction((inboundId: number, part: number, update: () => number) => {
    if (update() === 0 && statements.outboxExists.get(inboundId, part) === undefined) {
      throw unknownOutbox(inboundId, part, path);
    }
  });

  return {
    markAnswered(inboundIds, reply) {
      return run("write to", () => {
        checkAnswered(inboundIds);
        return durable(() => answer(inboundIds, reply));
      });
    },
    markSent(inboundId, part) {
      return run("write to", () =>
        updateOutbox(
          inboundId,
          part,
          () => statements.sent.run({ inboundId, part, now: clock.now() }).changes,
        ),
      );
    },
    markSendFailed(inboundId, part, error) {
      return run("write to", () =>
        updateOutbox(
          inboundId,
          part,
          () => statements.sendFailed.run({ inboundId, part, error }).changes,
        ),
      );
    },
    abandon(inboundId, part, reason) {
      return run("write to", () =>
        updateOutbox(
          inboundId,
          part,
          () => statements.abandon.run({ inboundId, part, error: reason }).changes,
        ),
      );
    },
    unsentOutbox() {
      return run("read", () => statements.unsentOutbox.all().map(toOutboxRow));
    },
    replyEventsAfter(channel, afterId, limit) {
      return run("read", () =>
        statements.outboxAfter.all(channel, afterId, limit).map(toReplyEvent),
      );
    },
    replyEvent(outboxId) {
      return run("read", () => {
        const row = statements.outboxById.get(outboxId);
        return row === undefined ? undefined : toReplyEvent(row);
      });
    },
    lastReplyEventId(channel) {
      return run("read", () => statements.lastOutboxId.get(channel) ?? 0);
    },
  };
}
