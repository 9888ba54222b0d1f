/**
 * What the PostgreSQL journal's parts share: one statement through the pool, or several in one
 * transaction on one connection, every failure a `DispatchError` naming the server
 * (`postgres-database.ts`), and the rows as the driver gives them turned into the shared row
 * shapes (`BIGINT` columns come back as strings).
 */
import type pg from "pg";
import type { Clock } from "../../utils/clock.js";
import type {
  InboundRecord,
  OutboxRecord,
  SessionCostRecord,
  TurnRecordRow,
} from "../journal-rows.js";
import { inTransaction, queryRows, type PostgresDatabase } from "./postgres-database.js";

export interface PostgresJournalContext {
  clock: Clock;
  /** `postgres://user@host:port/database`, for messages. */
  target: string;
  /** One statement, atomic on its own. */
  query: <Row extends object>(action: string, sql: string, values: unknown[]) => Promise<Row[]>;
  /** Several statements in one transaction; rolled back when `work` throws. */
  transaction: <T>(action: string, work: (client: pg.PoolClient) => Promise<T>) => Promise<T>;
}

export function createPostgresJournalContext(
  database: PostgresDatabase,
  clock: Clock,
): PostgresJournalContext {
  const { target } = database;
  return {
    clock,
    target,
    query: (action, sql, values) => queryRows(database, action, sql, values),
    transaction: (action, work) => inTransaction(database, action, work),
  };
}

/** `inbound`'s columns, as `fromInbound` reads them. */
export const INBOUND_COLUMNS = `id, uuid, channel, external_id, chat_id, sender, group_name, text,
  received_at, status, attempts, error_code, error_message, answered_by, envelope_nonce,
  created_at, updated_at`;

type Driven<Row> = { [Key in keyof Row]: Row[Key] | string };

const number = (value: unknown): number => Number(value);
const numberOrNull = (value: unknown): number | null => (value === null ? null : Number(value));

export function fromInbound(row: Driven<InboundRecord>): InboundRecord {
  return {
    ...(row as InboundRecord),
    id: number(row.id),
    received_at: number(row.received_at),
    answered_by: numberOrNull(row.answered_by),
    created_at: number(row.created_at),
    updated_at: number(row.updated_at),
  };
}

export function fromOutbox(row: Driven<OutboxRecord>): OutboxRecord {
  return {
    ...(row as OutboxRecord),
    id: number(row.id),
    inbound_id: number(row.inbound_id),
    created_at: number(row.created_at),
    sent_at: numberOrNull(row.sent_at),
  };
}

export function fromTurn(
  row: Omit<Driven<TurnRecordRow>, "is_error"> & { is_error: boolean },
): TurnRecordRow {
  return {
    ...(row as unknown as TurnRecordRow),
    ended_at: number(row.ended_at),
    duration_ms: number(row.duration_ms),
    is_error: row.is_error === true ? 1 : 0,
    total_tokens: numberOrNull(row.total_tokens),
  };
}

export function fromSessionCost(row: Driven<SessionCostRecord>): SessionCostRecord {
  return {
    ...(row as SessionCostRecord),
    cost_usd: number(row.cost_usd),
    turns: number(row.turns),
    unknown_turns: number(row.unknown_turns),
  };
}
