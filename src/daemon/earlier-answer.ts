/**
 * A crash can come between the agent's answer and the journal's record of it: the turn is in
 * the transcript (an orphaned CLI even finishes its turn after the daemon died), but the message
 * is still open in the journal. Replaying it under the same id does nothing (the CLI skips a
 * user message whose id its transcript already holds, so it would wait forever), and under a new
 * id the contact would be answered twice. So a replay first looks for the earlier answer in
 * dispatch's copy of the transcript (brought up to date with the CLI's own at start, by
 * `transcript-catch-up.ts`) and, when there is one, uses it; otherwise it gives the message to
 * the agent under a new id derived from the journal's (`replayMessageId`), which later replays
 * can look for in turn.
 */
import { createHash } from "node:crypto";
import type { ChatId } from "../core/ids.js";
import type { Registry } from "../store/registry.js";
import type { TranscriptStore } from "../store/transcript-store.js";

/** An answer the transcript holds, and the session that gave it. */
export interface EarlierAnswer {
  text: string;
  agentSessionId: string;
}

/** Looks in the chat's current session for a finished turn that answered one of `messageIds`. */
export type FindEarlierAnswer = (
  chatId: ChatId,
  messageIds: readonly string[],
) => Promise<EarlierAnswer | undefined>;

/**
 * The id a message is given to the agent with on its `replay`-th replay (1, 2, ...): a UUID
 * derived from the journal's, so the ids of every earlier hand-over can be worked out again.
 */
export function replayMessageId(uuid: string, replay: number): string {
  if (replay === 0) return uuid;
  const hex = createHash("sha256").update(`${uuid}/replay/${replay}`).digest("hex");
  // RFC 9562 layout: version 8 (custom), variant 10.
  const variant = ((Number.parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Every id a message had with the agent, after `replays` replays. */
export function agentMessageIds(uuid: string, replays: number): string[] {
  return Array.from({ length: replays + 1 }, (_unused, replay) => replayMessageId(uuid, replay));
}

interface Turn {
  inputIds: string[];
  /** What the model said and did, in order; a tool call is `undefined`. */
  steps: (string | undefined)[];
  failed: boolean;
}

type Line = Record<string, unknown>;

function record(value: unknown): Line | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Line)
    : undefined;
}

function blocksOf(content: unknown): Line[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  if (!Array.isArray(content)) return [];
  return content.flatMap((block) => {
    const value = record(block);
    return value ? [value] : [];
  });
}

/**
 * Transcript entries (the lines of the CLI's `<session id>.jsonl`) as turns: a prompt opens a
 * turn unless the current one has no answer yet (the CLI merges a prompt cut off by a crash with
 * the next). Only the model's own messages count as answers: the CLI's `<synthetic>` ones ("No
 * response requested." after a prompt a crash cut off) and API error messages do not.
 */
export function turnsOf(entries: readonly unknown[]): Turn[] {
  const turns: Turn[] = [];
  let current: Turn | undefined;
  for (const entry of entries) {
    const line = record(entry);
    if (!line || line.isSidechain === true) continue;
    const message = record(line.message);
    const blocks = blocksOf(message?.content);
    if (line.type === "user" && line.isMeta !== true && line.isCompactSummary !== true) {
      if (blocks.some((block) => block.type === "tool_result")) continue;
      if (!blocks.some((block) => block.type === "text")) continue;
      if (!current || current.steps.length > 0) {
        current = { inputIds: [], steps: [], failed: false };
        turns.push(current);
      }
      if (typeof line.uuid === "string") current.inputIds.push(line.uuid);
    } else if (line.type === "assistant" && current && message?.model !== "<synthetic>") {
      if (line.isApiErrorMessage === true) {
        current.failed = true;
        continue;
      }
      for (const block of blocks) {
        if (block.type === "text" && typeof block.text === "string") current.steps.push(block.text);
        if (block.type === "tool_use") current.steps.push(undefined);
      }
    }
  }
  return turns;
}

/**
 * The text of a finished turn that answered one of `messageIds`. A turn counts as finished when
 * it did not fail and its last step is text: one cut off mid-way (a tool call without its
 * outcome, no answer at all) is no answer.
 */
export function earlierAnswerIn(
  turns: readonly Turn[],
  messageIds: readonly string[],
): string | undefined {
  const wanted = new Set(messageIds);
  const turn = turns.find((candidate) => candidate.inputIds.some((id) => wanted.has(id)));
  if (!turn || turn.failed || typeof turn.steps.at(-1) !== "string") return undefined;
  return turn.steps
    .filter((step): step is string => step !== undefined)
    .join("\n\n")
    .trim();
}

/** How far back a replayed message's turn is looked for: it is among the latest. */
const RECENT_ENTRIES = 2_000;

export function createEarlierAnswerFinder(deps: {
  registry: Registry;
  transcripts: TranscriptStore;
}): FindEarlierAnswer {
  return async (chatId, messageIds) => {
    const entry = deps.registry.get(chatId);
    if (!entry?.session_id) return undefined;
    const turns = turnsOf(await deps.transcripts.recentEntries(entry.session_id, RECENT_ENTRIES));
    const answer = earlierAnswerIn(turns, messageIds);
    return answer === undefined ? undefined : { text: answer, agentSessionId: entry.session_id };
  };
}
