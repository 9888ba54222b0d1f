/**
 * The message journal: every inbound message is recorded before it is acknowledged, moves
 * received -> delivered -> answered (or rejected), and every reply part is recorded in an outbox
 * before it is sent. Channels that poll keep their cursor here, written in the same transaction
 * as the message. The SQLite adapter is `sqlite-journal.ts`; `docs/journal.md` has the schema,
 * the states and the per-channel outbox policy.
 *
 * Every method returns a promise (the PostgreSQL adapter waits on its server) and every write is
 * one transaction, done when the promise resolves. Failures are `DispatchError`s (`journal_*`
 * codes from SQLite, `database_*` from PostgreSQL); a logic error by the caller (an unknown id,
 * answering twice) is `journal_unknown_inbound`, `journal_unknown_outbox` or `journal_conflict`.
 */
import type { InboundMessage } from "../channels/channel.js";
import type { Fence } from "./chat-ownership.js";

export const INBOUND_STATUSES = ["received", "delivered", "answered", "rejected"] as const;
/**
 * `received`: recorded, not yet handed to a session. `delivered`: handed to its session, not yet
 * answered (replayed after a restart, like `received`). `answered`: a turn's reply covered it.
 * `rejected`: never to be answered (unknown sender, invalid chat id, over an intake limit).
 */
export type InboundStatus = (typeof INBOUND_STATUSES)[number];

export const OUTBOX_STATUSES = ["pending", "sent", "failed", "abandoned"] as const;
/**
 * `pending`: recorded, not confirmed sent. `failed`: a send failed; may be tried again.
 * `sent`: the channel confirmed it. `abandoned`: given up, never to be sent.
 */
export type OutboxStatus = (typeof OUTBOX_STATUSES)[number];

/** Answered and rejected messages are kept this long by default (30 days), then pruned. */
export const DEFAULT_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;

/** A recorded message: the message as the channel gave it plus its journal state. */
export interface InboundRow extends InboundMessage {
  id: number;
  /** A random UUID, given to the agent SDK with the message; the SDK reports it back. */
  uuid: string;
  status: InboundStatus;
  /**
   * Times it was replayed to a session after a restart; the n-th replay gives it to the agent
   * under an id derived from `uuid` (`daemon/earlier-answer.ts`).
   */
  attempts: number;
  errorCode?: string;
  errorMessage?: string;
  /** The message whose outbox holds the reply, when answered (itself, or the last of a turn). */
  answeredBy?: number;
  /**
   * The nonce of the envelope the agent was given the message in (`identity/wrap-message.ts`),
   * once it was: every later hand-over wraps it with the same one, and a replay finds it in the
   * transcript by it. Unset before the first hand-over, and in rows of schema version 3.
   */
  envelopeNonce?: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface OutboxRow {
  /** Increasing in the order parts were recorded, never reused: `GET /v1/events`' event id. */
  id: number;
  inboundId: number;
  part: number;
  channel: string;
  chatId: string;
  text: string;
  status: OutboxStatus;
  /** Send attempts recorded by `markSent` and `markSendFailed`. */
  attempts: number;
  error?: string;
  createdAt: Date;
  sentAt?: Date;
}

/** A recorded reply part as a client sees it (`GET /v1/events`, the reply webhook). */
export interface ReplyEvent {
  /** The outbox row's id. */
  id: number;
  inboundId: number;
  part: number;
  /** How many parts the reply has. */
  parts: number;
  chatId: string;
  text: string;
  /** The messages it answers, by the ids their client knows (its `message_id`, or our uuid). */
  messageIds: string[];
  createdAt: Date;
}

export interface RecordInboundResult {
  id: number;
  uuid: string;
  /** The same (channel, external id) was recorded before; this result describes that row. */
  duplicate: boolean;
  status: InboundStatus;
  /** For an answered duplicate: the parts of the reply that answered it (maybe none). */
  reply?: string[];
  /** For a duplicate handed to the agent before: its envelope's nonce (`InboundRow`). */
  envelopeNonce?: string;
}

/** Where a message stands, and the reply that answered it (`Journal.answersTo`). */
export interface InboundAnswer {
  id: number;
  /** The chat as the channel gave its id. */
  chatId: string;
  status: InboundStatus;
  /** The parts of the reply that answered it; empty unless answered (or for silence). */
  reply: string[];
  /** Why its turn failed, when it did (`Reply.failure`). */
  failure?: string;
}

export interface Reply {
  channel: string;
  chatId: string;
  /** The reply split to the channel's limit; empty when the agent chose silence. */
  parts: string[];
  /**
   * Set when the turn failed (no parts then): kept with the messages it answers (`error_code`
   * `agent_error`), so a request waiting on another node of a cluster hears of it
   * (`answersTo`).
   */
  failure?: string;
}

/** One finished turn of the agent and what it cost (the `turns` table). */
export interface TurnRecord {
  chatId: string;
  /** The agent session the turn ran in. */
  sessionId: string;
  /** UUIDs of the messages the turn answered (`inbound.uuid`, the agent's user message ids). */
  messageUuids: string[];
  endedAt: Date;
  durationMs: number;
  isError: boolean;
  /** The agent's running total after the turn, as it reported it. */
  totalCostUsd: number;
  /** Tokens behind that total; null when the agent did not report them. */
  totalTokens: number | null;
  /** The turn's own cost; null when it cannot be told (`core/turn-cost.ts`). */
  costUsd: number | null;
}

/** The recorded turns of one agent session, their known costs summed. */
export interface SessionCost {
  chatId: string;
  sessionId: string;
  costUsd: number;
  turns: number;
  /** Turns whose cost could not be told: `costUsd` leaves them out. */
  unknownTurns: number;
}

export interface JournalCounts {
  inbound: Record<InboundStatus, number>;
  outbox: Record<OutboxStatus, number>;
}

export interface PruneResult {
  inbound: number;
  outbox: number;
}

export interface Journal {
  /**
   * Records a message (one transaction with the channel's new `cursor`, when given). A message
   * whose (channel, external id) is already recorded is not recorded again: the result is that
   * row's, with `duplicate: true`. Messages without an external id are always new. The record
   * survives a crash of dispatch at once, a power cut once `sync()` (or a reply's record) is done.
   */
  recordInbound(
    message: InboundMessage,
    options?: { cursor?: string },
  ): Promise<RecordInboundResult>;
  /**
   * Resolves when every write so far would survive a power cut. Off the event loop; calls that
   * come while one is under way share the next.
   */
  sync(): Promise<void>;
  /** received -> delivered; no change in any other state. */
  markDelivered(id: number): Promise<void>;
  /** received or delivered -> rejected, with why; no change in any other state. */
  markRejected(id: number, code: string, message: string): Promise<void>;
  /**
   * Keeps the nonce of the envelope the message is handed to the agent in; recorded before the
   * agent can see it. A crash keeps it, a power cut only with the acknowledgment's `sync()`.
   */
  recordEnvelopeNonce(id: number, nonce: string): Promise<void>;
  /** Counts one more replay to a session; returns the new count. */
  recordAttempt(id: number): Promise<number>;
  /**
   * One turn's reply answers `inboundIds` (each received or delivered): all become answered,
   * answered by the last id, which gets the outbox rows (parts 0..n-1, pending). Returns them,
   * on disk: this and every earlier write survive a power cut. With `fence` (a cluster's node,
   * `chat-ownership.ts`), it is recorded only while that lease still stands, else it rejects with
   * `lease_lost` and records nothing; the embedded journal has one node and ignores it.
   */
  markAnswered(
    inboundIds: readonly number[],
    reply: Reply,
    options?: { fence?: Fence },
  ): Promise<OutboxRow[]>;
  /** pending or failed -> sent; no change once sent or abandoned. */
  markSent(inboundId: number, part: number): Promise<void>;
  /** pending or failed -> failed, with the error; counts the attempt. */
  markSendFailed(inboundId: number, part: number, error: string): Promise<void>;
  /** pending or failed -> abandoned, with the reason. */
  abandon(inboundId: number, part: number, reason: string): Promise<void>;
  /**
   * Messages received or delivered and not yet answered, oldest first (replay order); only those
   * of one chat (as the channel gave its id) when `chatId` is given.
   */
  pendingInbound(options?: { chatId?: string }): Promise<InboundRow[]>;
  /** Reply parts pending or failed, by message then part. */
  unsentOutbox(): Promise<OutboxRow[]>;
  /** Reply parts of `channel` recorded after outbox id `afterId`, oldest first, at most `limit`. */
  replyEventsAfter(channel: string, afterId: number, limit: number): Promise<ReplyEvent[]>;
  /** One reply part as a client sees it; undefined when it is not (or no longer) recorded. */
  replyEvent(outboxId: number): Promise<ReplyEvent | undefined>;
  /** The id of the latest reply part recorded for `channel`; 0 when there is none. */
  lastReplyEventId(channel: string): Promise<number>;
  cursor(channel: string): Promise<string | undefined>;
  /** Saves a cursor no message carries (rows a channel skipped, a first run's starting point). */
  setCursor(channel: string, value: string): Promise<void>;
  findByExternalId(channel: string, externalId: string): Promise<InboundRow | undefined>;
  /**
   * Where each of `inboundIds` stands, with the reply that answered it: for a request waiting on
   * one node for a reply another node recorded (`docs/cluster.md`). Unknown ids are left out.
   */
  answersTo(inboundIds: readonly number[]): Promise<InboundAnswer[]>;
  /** Records a finished turn. Turns are kept when messages are pruned: they are the cost history. */
  recordTurn(turn: TurnRecord): Promise<void>;
  /** A chat's latest turns (of one agent session, when `sessionId` is given), newest first. */
  recentTurns(
    chatId: string,
    options?: { sessionId?: string; limit?: number },
  ): Promise<TurnRecord[]>;
  /** Every agent session's recorded turns and known cost. */
  costBySession(): Promise<SessionCost[]>;
  counts(): Promise<JournalCounts>;
  /**
   * Deletes answered and rejected messages (with their sent or abandoned reply parts) last
   * changed more than `olderThanMs` ago (default `DEFAULT_RETENTION_MS`). Messages still open,
   * and replies still pending or failed, are kept.
   */
  prune(options?: { olderThanMs?: number }): Promise<PruneResult>;
  /** Closes the database (shared with the transcript store: close the journal last). */
  close(): Promise<void>;
}
