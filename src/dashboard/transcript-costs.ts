/**
 * Puts the journal's recorded turn costs on the transcript's turns. Pure.
 *
 * A recorded turn names the messages it answered by the UUIDs dispatch gave the agent, and the
 * CLI writes each message into its transcript under that same UUID: a recorded turn belongs to
 * the transcript turn that holds one of its messages. Nothing is matched by position, so a turn
 * with no record (dispatch's own context turns, turns from before costs were recorded) keeps an
 * unknown cost rather than a neighbour's. A transcript turn that carries its own cost keeps it.
 */
import type { TranscriptTurn } from "./transcript.js";

/** What a recorded turn contributes: the messages it answered and its cost (null: unknown). */
export interface RecordedTurnCost {
  messageUuids: readonly string[];
  costUsd: number | null;
}

export function withRecordedCosts(
  turns: readonly TranscriptTurn[],
  records: readonly RecordedTurnCost[],
): TranscriptTurn[] {
  const turnOfUuid = new Map<string, number>();
  turns.forEach((turn, index) => {
    for (const input of turn.inputs) {
      if (input.uuid !== null && !turnOfUuid.has(input.uuid)) turnOfUuid.set(input.uuid, index);
    }
  });
  /** Recorded costs per transcript turn: several when it shows as one what the agent reported as several. */
  const matched = new Map<number, (number | null)[]>();
  for (const record of records) {
    const index = record.messageUuids
      .map((uuid) => turnOfUuid.get(uuid))
      .find((found) => found !== undefined);
    if (index === undefined) continue;
    matched.set(index, [...(matched.get(index) ?? []), record.costUsd]);
  }
  return turns.map((turn, index) => {
    const costs = matched.get(index);
    if (turn.cost_usd !== null || costs === undefined) return turn;
    const known = costs.every((cost) => cost !== null);
    return { ...turn, cost_usd: known ? costs.reduce((sum, cost) => sum + cost, 0) : null };
  });
}
