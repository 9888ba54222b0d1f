/**
 * The journal's cost history, in the state database: one row per finished turn of the agent, kept
 * when its messages are pruned. Part of `sqlite-journal.ts`.
 */
import type { Journal, SessionCost } from "./journal.js";
import {
  checkTurn,
  DEFAULT_TURN_LIMIT,
  toTurnRecord,
  type SessionCostRecord,
  type TurnRecordRow,
} from "./journal-rows.js";
import type { SqliteJournalContext } from "./sqlite-journal.js";

export type JournalTurns = Pick<Journal, "recordTurn" | "recentTurns" | "costBySession">;

/** Each method does its work when called, before it returns its promise. */
export function createSqliteJournalTurns(context: SqliteJournalContext): JournalTurns {
  const { db, guard, run } = context;

  const statements = guard("prepare statements for", () => ({
    insertTurn: db.prepare(
      `INSERT INTO turns (chat_id, session_id, message_uuids, ended_at, duration_ms, is_error,
         total_cost_usd, total_tokens, cost_usd)
       VALUES (@chatId, @sessionId, @messageUuids, @endedAt, @durationMs, @isError,
         @totalCostUsd, @totalTokens, @costUsd)`,
    ),
    turnsOfChat: db.prepare<[string, number], TurnRecordRow>(
      `SELECT * FROM turns WHERE chat_id = ? ORDER BY id DESC LIMIT ?`,
    ),
    turnsOfSession: db.prepare<[string, string, number], TurnRecordRow>(
      `SELECT * FROM turns WHERE chat_id = ? AND session_id = ? ORDER BY id DESC LIMIT ?`,
    ),
    costBySession: db.prepare<[], SessionCostRecord>(
      `SELECT chat_id, session_id, coalesce(sum(cost_usd), 0) AS cost_usd, count(*) AS turns,
         count(*) - count(cost_usd) AS unknown_turns
       FROM turns GROUP BY chat_id, session_id`,
    ),
  }));

  return {
    recordTurn(turn) {
      return run("write to", () => {
        checkTurn(turn);
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
        });
      });
    },
    recentTurns(chatId, options = {}) {
      const limit = options.limit ?? DEFAULT_TURN_LIMIT;
      return run("read", () =>
        (options.sessionId === undefined
          ? statements.turnsOfChat.all(chatId, limit)
          : statements.turnsOfSession.all(chatId, options.sessionId, limit)
        ).map(toTurnRecord),
      );
    },
    costBySession() {
      return run("read", () =>
        statements.costBySession.all().map((row): SessionCost => ({
          chatId: row.chat_id,
          sessionId: row.session_id,
          costUsd: row.cost_usd,
          turns: row.turns,
          unknownTurns: row.unknown_turns,
        })),
      );
    },
  };
}
