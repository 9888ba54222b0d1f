/**
 * What each turn cost, kept in the journal's `turns` table so the figures survive restarts: each
 * finished turn is recorded with its own cost (`core/turn-cost.ts` tells it from the agent's
 * running totals), and the cost so far of a chat is the sum over its agent sessions. The sums
 * are read from the journal once and then kept up to date in memory, so the dashboard can ask
 * every second.
 */
import type { Clock } from "../utils/clock.js";
import { describeError } from "../utils/errors.js";
import type { TurnReply } from "../core/session.js";
import { turnCostUsd, type CostReading } from "../core/turn-cost.js";
import type { Logger } from "../logging/logger.js";
import type { Journal, SessionCost, TurnRecord } from "../store/journal.js";

export interface TurnCostsDeps {
  journal: Pick<Journal, "recordTurn" | "recentTurns" | "costBySession">;
  clock: Clock;
  logger: Logger;
}

export interface CostSoFar {
  /** Known turn costs summed. */
  costUsd: number;
  /** Turns recorded. */
  turns: number;
  /** Turns whose cost could not be told, left out of `costUsd`. */
  unknownTurns: number;
}

export interface TurnCosts {
  /** Reads the sums from the journal; `costOf` knows nothing before. Never throws. */
  load(): Promise<void>;
  /** Records a finished turn of the agent. Never rejects: a journal failure is logged. */
  record(reply: TurnReply): Promise<void>;
  /** The cost so far of these agent sessions (a chat's current and earlier ones). */
  costOf(sessionIds: readonly string[]): CostSoFar;
  /** A chat's recorded turns, newest first. */
  recentTurns(chatId: string, limit: number): Promise<TurnRecord[]>;
}

/** Earlier turns searched for the figure a resumed process started from. */
const EARLIER_TURNS_SEARCHED = 50;

export function createTurnCosts(deps: TurnCostsDeps): TurnCosts {
  const { journal, clock, logger } = deps;
  /** By agent session id; read from the journal by `load` or the first `record`. */
  let bySession: Map<string, SessionCost> | undefined;

  const sums = async (): Promise<Map<string, SessionCost>> => {
    if (bySession === undefined) {
      const loaded = new Map((await journal.costBySession()).map((cost) => [cost.sessionId, cost]));
      // A `record` that loaded them while this one waited keeps its own, which holds its turn.
      bySession ??= loaded;
    }
    return bySession;
  };

  return {
    async load() {
      try {
        await sums();
      } catch (error) {
        logger.error("turn-cost-load-failed", { cause: describeError(error) });
      }
    },

    async record(reply) {
      // A reply of dispatch's own (a message given up on) is no turn of the agent.
      const report = reply.cost;
      if (report === undefined) return;
      try {
        const earlier: CostReading[] =
          report.previous === null && report.resumed
            ? (
                await journal.recentTurns(reply.chatId, {
                  sessionId: reply.agentSessionId,
                  limit: EARLIER_TURNS_SEARCHED,
                })
              ).map((turn) => ({ totalUsd: turn.totalCostUsd, totalTokens: turn.totalTokens }))
            : [];
        const costUsd = turnCostUsd(report, earlier);
        const current = await sums();
        await journal.recordTurn({
          chatId: reply.chatId,
          sessionId: reply.agentSessionId,
          messageUuids: reply.messageIds,
          endedAt: new Date(clock.now()),
          durationMs: Math.max(0, reply.durationMs),
          isError: reply.isError,
          totalCostUsd: report.totalUsd,
          totalTokens: report.totalTokens,
          costUsd,
        });
        const sum = current.get(reply.agentSessionId) ?? {
          chatId: reply.chatId,
          sessionId: reply.agentSessionId,
          costUsd: 0,
          turns: 0,
          unknownTurns: 0,
        };
        current.set(reply.agentSessionId, {
          ...sum,
          costUsd: sum.costUsd + (costUsd ?? 0),
          turns: sum.turns + 1,
          unknownTurns: sum.unknownTurns + (costUsd === null ? 1 : 0),
        });
      } catch (error) {
        logger.error("turn-cost-record-failed", {
          chatId: reply.chatId,
          cause: describeError(error),
        });
      }
    },

    costOf(sessionIds) {
      const total: CostSoFar = { costUsd: 0, turns: 0, unknownTurns: 0 };
      const current = bySession ?? new Map<string, SessionCost>();
      for (const sessionId of new Set(sessionIds)) {
        const sum = current.get(sessionId);
        if (!sum) continue;
        total.costUsd += sum.costUsd;
        total.turns += sum.turns;
        total.unknownTurns += sum.unknownTurns;
      }
      return total;
    },

    recentTurns(chatId, limit) {
      return journal.recentTurns(chatId, { limit });
    },
  };
}
