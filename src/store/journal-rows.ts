/**
 * What both journal adapters (`sqlite-journal*.ts`, `postgres/postgres-journal*.ts`) share: the
 * rows as the tables hold them, turned into the port's shapes, and the checks of what a caller
 * passes in, with the errors they raise. No I/O here.
 */
import type { InboundMessage } from "../channels/channel.js";
import { DispatchError } from "../utils/errors.js";
import {
  INBOUND_STATUSES,
  OUTBOX_STATUSES,
  type InboundRow,
  type InboundStatus,
  type JournalCounts,
  type OutboxRow,
  type OutboxStatus,
  type RecordInboundResult,
  type TurnRecord,
} from "./journal.js";

/** An `inbound` row as stored: times in epoch milliseconds. */
export interface InboundRecord {
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

export interface OutboxRecord {
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

export interface TurnRecordRow {
  chat_id: string;
  session_id: string;
  message_uuids: string;
  ended_at: number;
  duration_ms: number;
  /** 0 or 1. */
  is_error: number;
  total_cost_usd: number;
  total_tokens: number | null;
  cost_usd: number | null;
}

export interface SessionCostRecord {
  chat_id: string;
  session_id: string;
  cost_usd: number;
  turns: number;
  unknown_turns: number;
}

/** Turns `recentTurns` returns when no limit is given. */
export const DEFAULT_TURN_LIMIT = 100;

export function toInboundRow(row: InboundRecord): InboundRow {
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

/** What `recordInbound` reports for a message recorded before; `reply` when it was answered. */
export function duplicateResult(
  row: InboundRecord,
  reply: string[] | undefined,
): RecordInboundResult {
  const result: RecordInboundResult = {
    id: row.id,
    uuid: row.uuid,
    duplicate: true,
    status: row.status,
  };
  if (row.envelope_nonce !== null) result.envelopeNonce = row.envelope_nonce;
  if (row.status === "answered") result.reply = reply ?? [];
  return result;
}

export function toOutboxRow(row: OutboxRecord): OutboxRow {
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

export function toTurnRecord(row: TurnRecordRow): TurnRecord {
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

/** Every status at zero, for `counts()` to fill in. */
export function emptyCounts(): JournalCounts {
  return {
    inbound: Object.fromEntries(INBOUND_STATUSES.map((status) => [status, 0])) as Record<
      InboundStatus,
      number
    >,
    outbox: Object.fromEntries(OUTBOX_STATUSES.map((status) => [status, 0])) as Record<
      OutboxStatus,
      number
    >,
  };
}

/** Throws `journal_invalid_message` for a message whose `receivedAt` is no valid Date. */
export function checkInbound(message: InboundMessage): void {
  if (!(message.receivedAt instanceof Date) || Number.isNaN(message.receivedAt.getTime())) {
    throw new DispatchError(
      "journal_invalid_message",
      `Expected \`receivedAt\` of a ${message.channel} message to be a valid Date, got ` +
        `\`${String(message.receivedAt)}\`.`,
    );
  }
}

/** Throws `journal_conflict` for a reply that answers no message. */
export function checkAnswered(inboundIds: readonly number[]): void {
  if (inboundIds.length === 0) {
    throw new DispatchError(
      "journal_conflict",
      "A reply must answer at least one message; got an empty list of message ids.",
    );
  }
}

/** Throws `journal_invalid_turn` for a turn that cannot be recorded. */
export function checkTurn(turn: TurnRecord): void {
  const problem = turnProblem(turn);
  if (problem !== undefined) {
    throw new DispatchError(
      "journal_invalid_turn",
      `Cannot record a turn of chat ${turn.chatId}: ${problem}.`,
    );
  }
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

/** The retention bound `prune` deletes before; throws `journal_invalid_retention`. */
export function checkRetention(olderThanMs: number): void {
  if (!Number.isFinite(olderThanMs) || olderThanMs < 0) {
    throw new DispatchError(
      "journal_invalid_retention",
      `Expected \`olderThanMs\` to be a non-negative number, got \`${olderThanMs}\`.`,
    );
  }
}

export function unknownInbound(id: number, where: string): DispatchError {
  return new DispatchError(
    "journal_unknown_inbound",
    `No message ${id} in the journal ${where}: it was never recorded, or it was pruned.`,
  );
}

export function unknownOutbox(inboundId: number, part: number, where: string): DispatchError {
  return new DispatchError(
    "journal_unknown_outbox",
    `No reply part ${part} of message ${inboundId} in the journal ${where}.`,
  );
}

export function answeredTwice(id: number, status: InboundStatus, where: string): DispatchError {
  return new DispatchError(
    "journal_conflict",
    `Message ${id} in the journal ${where} is already ${status}; a reply cannot answer it again.`,
  );
}
