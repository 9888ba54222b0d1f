/**
 * The journal's cost history, in PostgreSQL: one row per finished turn of the agent, kept when
 * its messages are pruned. Part of `postgres-journal.ts`.
 */
import {
  checkTurn,
  DEFAULT_TURN_LIMIT,
  toTurnRecord,
  type SessionCostRecord,
  type TurnRecordRow,
} from "../journal-rows.js";
import type { JournalTurns } from "../sqlite-journal-turns.js";
import {
  fromSessionCost,
  fromTurn,
  type PostgresJournalContext,
} from "./postgres-journal-context.js";

const INSERT = `
  INSERT INTO turns (chat_id, session_id, message_uuids, ended_at, duration_ms, is_error,
    total_cost_usd, total_tokens, cost_usd)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`;
const OF_CHAT = `SELECT * FROM turns WHERE chat_id = $1 ORDER BY id DESC LIMIT $2`;
const OF_SESSION = `
  SELECT * FROM turns WHERE session_id = $2 AND chat_id = $1 ORDER BY id DESC LIMIT $3`;
const COST_BY_SESSION = `
  SELECT chat_id, session_id, coalesce(sum(cost_usd), 0) AS cost_usd, count(*) AS turns,
    count(*) - count(cost_usd) AS unknown_turns
  FROM turns GROUP BY chat_id, session_id`;

/** A `turns` row as the driver gives it. */
type PgTurn = Omit<TurnRecordRow, "is_error"> & { is_error: boolean };

export function createPostgresJournalTurns(context: PostgresJournalContext): JournalTurns {
  const { query } = context;
  return {
    async recordTurn(turn) {
      checkTurn(turn);
      await query("write to", INSERT, [
        turn.chatId,
        turn.sessionId,
        JSON.stringify(turn.messageUuids),
        turn.endedAt.getTime(),
        Math.round(turn.durationMs),
        turn.isError,
        turn.totalCostUsd,
        turn.totalTokens,
        turn.costUsd,
      ]);
    },
    async recentTurns(chatId, options = {}) {
      const limit = options.limit ?? DEFAULT_TURN_LIMIT;
      const rows =
        options.sessionId === undefined
          ? await query<PgTurn>("read", OF_CHAT, [chatId, limit])
          : await query<PgTurn>("read", OF_SESSION, [chatId, options.sessionId, limit]);
      return rows.map((row) => toTurnRecord(fromTurn(row)));
    },
    async costBySession() {
      const rows = await query<SessionCostRecord>("read", COST_BY_SESSION, []);
      return rows.map((row) => {
        const cost = fromSessionCost(row);
        return {
          chatId: cost.chat_id,
          sessionId: cost.session_id,
          costUsd: cost.cost_usd,
          turns: cost.turns,
          unknownTurns: cost.unknown_turns,
        };
      });
    },
  };
}
