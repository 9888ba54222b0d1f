/**
 * The journal in the state database (see `sqlite-database.ts` for the schema and
 * `docs/journal.md` for the states). Statements are prepared once; every write is one
 * transaction, so a crash leaves each message, its cursor and its reply either fully recorded or
 * not at all.
 */
import { randomUUID } from "node:crypto";
import type { InboundMessage } from "../channels/channel.js";
import { systemClock, type Clock } from "../utils/clock.js";
import { DispatchError } from "../utils/errors.js";
import {
  DEFAULT_RETENTION_MS,
  INBOUND_STATUSES,
  OUTBOX_STATUSES,
  type InboundRow,
  type InboundStatus,
  type Journal,
  type JournalCounts,
  type OutboxRow,
  type OutboxStatus,
  type RecordInboundResult,
  type ReplyEvent,
  type Reply,
  type SessionCost,
  type TurnRecord,
} from "./journal.js";
import { journalError, journalGuard, type Database } from "./sqlite-database.js";
import { createWalSync, durableWrites } from "./sqlite-durability.js";

export interface SqliteJournalOptions {
  db: Database;
  clock?: Clock;
}

interface InboundRecord {
  id: number;
  uuid: string;
  channel: string;
  external_id: string | null;
  chat_id: string;
  sender: string | null;
  group_name: string | null;
  text: string;
  received_at: number;
  status: InboundStatus;
  attempts: number;
  error_code: string | null;
  error_message: string | null;
  answered_by: number | null;
  envelope_nonce: string | null;
  created_at: number;
  updated_at: number;
}

interface OutboxRecord {
  id: number;
  inbound_id: number;
  part: number;
  channel: string;
  chat_id: string;
  text: string;
  status: OutboxStatus;
  attempts: number;
  error: string | null;
  created_at: number;
  sent_at: number | null;
}

interface SessionCostRow {
  chat_id: string;
  session_id: string;
  cost_usd: number;
  turns: number;
  unknown_turns: number;
}

interface TurnRow {
  chat_id: string;
  session_id: string;
  message_uuids: string;
  ended_at: number;
  duration_ms: number;
  is_error: number;
  total_cost_usd: number;
  total_tokens: number | null;
  cost_usd: number | null;
}

/** Turns `recentTurns` returns when no limit is given. */
const DEFAULT_TURN_LIMIT = 100;

const OPEN = "('received', 'delivered')";
const UNSENT = "('pending', 'failed')";

/** Ids of answered or rejected messages whose whole turn is older than @bound and fully sent. */
const PRUNABLE = `
  SELECT id FROM inbound WHERE status IN ('answered', 'rejected')
    AND coalesce(answered_by, id) IN (
      SELECT coalesce(answered_by, id) AS answerer FROM inbound
      WHERE status IN ('answered', 'rejected')
      GROUP BY answerer
      HAVING max(updated_at) < @bound
        AND NOT EXISTS (
          SELECT 1 FROM outbox WHERE outbox.inbound_id = answerer AND outbox.status IN ${UNSENT}))`;

export function createSqliteJournal(options: SqliteJournalOptions): Journal {
  const { db } = options;
  const clock = options.clock ?? systemClock;
  const path = db.name;
  /**
   * Fsynced before returning: a reply (it is sent next) and a replay's attempt (the id it is
   * handed over under). A recorded message is not: it must survive a power cut only by the time
   * it is acknowledged, and the agent can read it meanwhile; `sync()` fsyncs it for a caller that
   * acknowledges before any reply. Every other write is bookkeeping a power cut may undo:
   * delivered (replayed like received), sent (an unconfirmed part is resent or abandoned),
   * rejected (refused again), turn costs, pruning.
   */
  const durable = durableWrites(db);
  const walSync = createWalSync(db);

  const guard = journalGuard(path);

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
    answer: db.prepare(
      `UPDATE inbound SET status = 'answered', answered_by = @answeredBy, updated_at = @now
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
    pendingInbound: db.prepare<[], InboundRecord>(
      `SELECT * FROM inbound WHERE status IN ${OPEN} ORDER BY id`,
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
    inboundCounts: db.prepare<[], { status: InboundStatus; count: number }>(
      `SELECT status, count(*) AS count FROM inbound GROUP BY status`,
    ),
    outboxCounts: db.prepare<[], { status: OutboxStatus; count: number }>(
      `SELECT status, count(*) AS count FROM outbox GROUP BY status`,
    ),
    // A turn's messages share their answerer's outbox, so they are pruned together: a group is
    // old when its newest member is, and done when no part of its reply is still to be sent.
    pruneOutbox: db.prepare(`DELETE FROM outbox WHERE inbound_id IN (${PRUNABLE})`),
    pruneInbound: db.prepare(`DELETE FROM inbound WHERE id IN (${PRUNABLE})`),
    insertTurn: db.prepare(
      `INSERT INTO turns (chat_id, session_id, message_uuids, ended_at, duration_ms, is_error,
         total_cost_usd, total_tokens, cost_usd)
       VALUES (@chatId, @sessionId, @messageUuids, @endedAt, @durationMs, @isError,
         @totalCostUsd, @totalTokens, @costUsd)`,
    ),
    turnsOfChat: db.prepare<[string, number], TurnRow>(
      `SELECT * FROM turns WHERE chat_id = ? ORDER BY id DESC LIMIT ?`,
    ),
    turnsOfSession: db.prepare<[string, string, number], TurnRow>(
      `SELECT * FROM turns WHERE chat_id = ? AND session_id = ? ORDER BY id DESC LIMIT ?`,
    ),
    costBySession: db.prepare<[], SessionCostRow>(
      `SELECT chat_id, session_id, coalesce(sum(cost_usd), 0) AS cost_usd, count(*) AS turns,
         count(*) - count(cost_usd) AS unknown_turns
       FROM turns GROUP BY chat_id, session_id`,
    ),
  }));

  const unknownInbound = (id: number) =>
    new DispatchError(
      "journal_unknown_inbound",
      `No message ${id} in the journal ${path}: it was never recorded, or it was pruned.`,
    );
  const requireInbound = (id: number): InboundRecord => {
    const row = statements.byId.get(id);
    if (row === undefined) throw unknownInbound(id);
    return row;
  };
  const requireOutbox = (inboundId: number, part: number) => {
    if (statements.outboxExists.get(inboundId, part) === undefined) {
      throw new DispatchError(
        "journal_unknown_outbox",
        `No reply part ${part} of message ${inboundId} in the journal ${path}.`,
      );
    }
  };

  const record = db.transaction(
    (message: InboundMessage, cursor: string | undefined): RecordInboundResult => {
      const now = clock.now();
      // The cursor first: should the insert fail, the rollback must undo the cursor too.
      if (cursor !== undefined) {
        statements.upsertCursor.run({ channel: message.channel, value: cursor, now });
      }
      if (message.externalId !== undefined) {
        const existing = statements.byExternalId.get(message.channel, message.externalId);
        if (existing !== undefined) return duplicateOf(existing);
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

  const duplicateOf = (row: InboundRecord): RecordInboundResult => {
    const result: RecordInboundResult = {
      id: row.id,
      uuid: row.uuid,
      duplicate: true,
      status: row.status,
    };
    if (row.envelope_nonce !== null) result.envelopeNonce = row.envelope_nonce;
    if (row.status === "answered") {
      result.reply = statements.replyOf.all(row.answered_by ?? row.id);
    }
    return result;
  };

  const answer = db.transaction((inboundIds: readonly number[], reply: Reply): OutboxRow[] => {
    const now = clock.now();
    const answeredBy = inboundIds.at(-1)!;
    for (const id of new Set(inboundIds)) {
      const row = requireInbound(id);
      if (row.status === "answered" || row.status === "rejected") {
        throw new DispatchError(
          "journal_conflict",
          `Message ${id} in the journal ${path} is already ${row.status}; a reply cannot ` +
            `answer it again.`,
        );
      }
      statements.answer.run({ id, answeredBy, now });
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

  /** Runs an update of one inbound row; an id that matches no row is the caller's mistake. */
  const updateInbound = db.transaction((id: number, update: () => number) => {
    if (update() === 0) requireInbound(id);
  });
  const updateOutbox = db.transaction((inboundId: number, part: number, update: () => number) => {
    if (update() === 0) requireOutbox(inboundId, part);
  });

  const prune = db.transaction((bound: number) => {
    const outbox = statements.pruneOutbox.run({ bound }).changes;
    const inbound = statements.pruneInbound.run({ bound }).changes;
    return { inbound, outbox };
  });

  return {
    recordInbound(message, options = {}) {
      if (!(message.receivedAt instanceof Date) || Number.isNaN(message.receivedAt.getTime())) {
        throw new DispatchError(
          "journal_invalid_message",
          `Expected \`receivedAt\` of a ${message.channel} message to be a valid Date, got ` +
            `\`${String(message.receivedAt)}\`.`,
        );
      }
      return guard("write to", () => record(message, options.cursor));
    },
    markDelivered(id) {
      guard("write to", () =>
        updateInbound(id, () => statements.deliver.run({ id, now: clock.now() }).changes),
      );
    },
    markRejected(id, code, message) {
      guard("write to", () =>
        updateInbound(
          id,
          () => statements.reject.run({ id, code, message, now: clock.now() }).changes,
        ),
      );
    },
    recordEnvelopeNonce(id, nonce) {
      guard("write to", () =>
        updateInbound(
          id,
          () => statements.envelopeNonce.run({ id, nonce, now: clock.now() }).changes,
        ),
      );
    },
    recordAttempt(id) {
      return guard("write to", () => {
        const attempts = durable(
          () => statements.attempt.get({ id, now: clock.now() }) as number | undefined,
        );
        if (attempts === undefined) throw unknownInbound(id);
        return attempts;
      });
    },
    markAnswered(inboundIds, reply) {
      if (inboundIds.length === 0) {
        throw new DispatchError(
          "journal_conflict",
          "A reply must answer at least one message; got an empty list of message ids.",
        );
      }
      return guard("write to", () => durable(() => answer(inboundIds, reply)));
    },
    markSent(inboundId, part) {
      guard("write to", () =>
        updateOutbox(
          inboundId,
          part,
          () => statements.sent.run({ inboundId, part, now: clock.now() }).changes,
        ),
      );
    },
    markSendFailed(inboundId, part, error) {
      guard("write to", () =>
        updateOutbox(
          inboundId,
          part,
          () => statements.sendFailed.run({ inboundId, part, error }).changes,
        ),
      );
    },
    abandon(inboundId, part, reason) {
      guard("write to", () =>
        updateOutbox(
          inboundId,
          part,
          () => statements.abandon.run({ inboundId, part, error: reason }).changes,
        ),
      );
    },
    pendingInbound() {
      return guard("read", () => statements.pendingInbound.all().map(toInboundRow));
    },
    unsentOutbox() {
      return guard("read", () => statements.unsentOutbox.all().map(toOutboxRow));
    },
    replyEventsAfter(channel, afterId, limit) {
      return guard("read", () =>
        statements.outboxAfter.all(channel, afterId, limit).map(toReplyEvent),
      );
    },
    replyEvent(outboxId) {
      return guard("read", () => {
        const row = statements.outboxById.get(outboxId);
        return row === undefined ? undefined : toReplyEvent(row);
      });
    },
    lastReplyEventId(channel) {
      return guard("read", () => statements.lastOutboxId.get(channel) ?? 0);
    },
    cursor(channel) {
      return guard("read", () => statements.cursor.get(channel));
    },
    setCursor(channel, value) {
      guard("write to", () => statements.upsertCursor.run({ channel, value, now: clock.now() }));
    },
    findByExternalId(channel, externalId) {
      return guard("read", () => {
        const row = statements.byExternalId.get(channel, externalId);
        return row === undefined ? undefined : toInboundRow(row);
      });
    },
    recordTurn(turn) {
      const problem = turnProblem(turn);
      if (problem !== undefined) {
        throw new DispatchError(
          "journal_invalid_turn",
          `Cannot record a turn of chat ${turn.chatId}: ${problem}.`,
        );
      }
      guard("write to", () =>
        statements.insertTurn.run({
          chatId: turn.chatId,
          sessionId: turn.sessionId,
          messageUuids: JSON.stringify(turn.messageUuids),
          endedAt: turn.endedAt.getTime(),
          durationMs: Math.round(turn.durationMs),
          isError: turn.isError ? 1 : 0,
          totalCostUsd: turn.totalCostUsd,
          totalTokens: turn.totalTokens,
          costUsd: turn.costUsd,
        }),
      );
    },
    recentTurns(chatId, options = {}) {
      const limit = options.limit ?? DEFAULT_TURN_LIMIT;
      return guard("read", () =>
        (options.sessionId === undefined
          ? statements.turnsOfChat.all(chatId, limit)
          : statements.turnsOfSession.all(chatId, options.sessionId, limit)
        ).map(toTurnRecord),
      );
    },
    costBySession() {
      return guard("read", () =>
        statements.costBySession.all().map((row): SessionCost => ({
          chatId: row.chat_id,
          sessionId: row.session_id,
          costUsd: row.cost_usd,
          turns: row.turns,
          unknownTurns: row.unknown_turns,
        })),
      );
    },
    counts() {
      return guard("read", () => {
        const counts: JournalCounts = {
          inbound: Object.fromEntries(INBOUND_STATUSES.map((status) => [status, 0])) as Record<
            InboundStatus,
            number
          >,
          outbox: Object.fromEntries(OUTBOX_STATUSES.map((status) => [status, 0])) as Record<
            OutboxStatus,
            number
          >,
        };
        for (const row of statements.inboundCounts.all()) counts.inbound[row.status] = row.count;
        for (const row of statements.outboxCounts.all()) counts.outbox[row.status] = row.count;
        return counts;
      });
    },
    prune(options = {}) {
      const olderThanMs = options.olderThanMs ?? DEFAULT_RETENTION_MS;
      if (!Number.isFinite(olderThanMs) || olderThanMs < 0) {
        throw new DispatchError(
          "journal_invalid_retention",
          `Expected \`olderThanMs\` to be a non-negative number, got \`${olderThanMs}\`.`,
        );
      }
      return guard("prune", () => prune(clock.now() - olderThanMs));
    },
    async sync() {
      try {
        await walSync.sync();
      } catch (error) {
        throw journalError(error, path, "sync");
      }
    },
    close() {
      walSync.close();
      if (db.open) db.close();
    },
  };
}

function toInboundRow(row: InboundRecord): InboundRow {
  const result: InboundRow = {
    id: row.id,
    uuid: row.uuid,
    channel: row.channel,
    chatId: row.chat_id,
    text: row.text,
    receivedAt: new Date(row.received_at),
    status: row.status,
    attempts: row.attempts,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
  if (row.external_id !== null) result.externalId = row.external_id;
  if (row.sender !== null) result.sender = row.sender;
  if (row.group_name !== null) result.groupName = row.group_name;
  if (row.error_code !== null) result.errorCode = row.error_code;
  if (row.error_message !== null) result.errorMessage = row.error_message;
  if (row.answered_by !== null) result.answeredBy = row.answered_by;
  if (row.envelope_nonce !== null) result.envelopeNonce = row.envelope_nonce;
  return result;
}

/** What is wrong with a turn record, or undefined when nothing is. */
function turnProblem(turn: TurnRecord): string | undefined {
  if (Number.isNaN(turn.endedAt.getTime())) return "`endedAt` is not a valid Date";
  if (!Number.isFinite(turn.durationMs) || turn.durationMs < 0)
    return `expected \`durationMs\` to be a non-negative number, got \`${turn.durationMs}\``;
  if (!Number.isFinite(turn.totalCostUsd))
    return `expected \`totalCostUsd\` to be a number, got \`${turn.totalCostUsd}\``;
  if (turn.costUsd !== null && !(Number.isFinite(turn.costUsd) && turn.costUsd >= 0))
    return `expected \`costUsd\` to be null or a non-negative number, got \`${turn.costUsd}\``;
  return undefined;
}

function toTurnRecord(row: TurnRow): TurnRecord {
  return {
    chatId: row.chat_id,
    sessionId: row.session_id,
    messageUuids: parseUuids(row.message_uuids),
    endedAt: new Date(row.ended_at),
    durationMs: row.duration_ms,
    isError: row.is_error === 1,
    totalCostUsd: row.total_cost_usd,
    totalTokens: row.total_tokens,
    costUsd: row.cost_usd,
  };
}

function parseUuids(text: string): string[] {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value.filter((item) => typeof item === "string") : [];
  } catch {
    return [];
  }
}

function toOutboxRow(row: OutboxRecord): OutboxRow {
  const result: OutboxRow = {
    id: row.id,
    inboundId: row.inbound_id,
    part: row.part,
    channel: row.channel,
    chatId: row.chat_id,
    text: row.text,
    status: row.status,
    attempts: row.attempts,
    createdAt: new Date(row.created_at),
  };
  if (row.error !== null) result.error = row.error;
  if (row.sent_at !== null) result.sentAt = new Date(row.sent_at);
  return result;
}
