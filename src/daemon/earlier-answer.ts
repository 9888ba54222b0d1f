/**
 * A crash can come between the agent's answer and the journal's record of it: the turn is in
 * the transcript (an orphaned CLI even finishes its turn after the daemon died), but the message
 * is still open in the journal. Or the message reached the transcript and the crash came before
 * the answer. Replaying it under the same id does nothing (the CLI skips a user message whose
 * id its transcript already holds, so it would wait forever), and under a new id its text would
 * stand in the session's context twice and the contact would be answered twice. So a replay
 * first looks for the message in dispatch's copy of the transcript (brought up to date with the
 * CLI's own at start, by `transcript-catch-up.ts`): answered there, that answer is used; there
 * without an answer, the session is asked to answer it without being given it again. Only a
 * message the transcript does not hold is given to the agent again, under a new id derived from
 * the journal's (`replayMessageId`), which later replays can look for in turn.
 *
 * A message is recognised by the nonce of its envelope (`identity/wrap-message.ts`), which the
 * journal keeps and every hand-over reuses, and by the ids the agent had it by: the CLI folds
 * messages steered into a running turn into one transcript entry under one id, or adds them to
 * the turn as attachments, but each keeps its envelope.
 */
import { createHash } from "node:crypto";
import { contentBlocks, recordOf, textOf, type TranscriptLine } from "../agent/transcript-line.js";
import type { ChatId } from "../utils/ids.js";
import { envelopeNoncesIn } from "../identity/wrap-message.js";
import type { Registry } from "../store/registry.js";
import type { TranscriptStore } from "../store/transcript-store.js";

/**
 * Where a message the journal still has open stands in its chat's transcript:
 * - `answered`: a finished turn answered it; `turn` tells the turns apart, so the messages one
 *   turn answered (steered together) get its reply once;
 * - `unanswered`: it is in the session's context, and no answer came after it (the turn was cut
 *   off, or had not started): the session must be asked for the answer, not given it again.
 */
export type Sighting =
  | { state: "answered"; text: string; agentSessionId: string; turn: number }
  | { state: "unanswered"; agentSessionId: string };

/** How a message is told in a transcript: its envelope's nonce, and every id the agent had it by. */
export interface MessageIdentity {
  envelopeNonce?: string;
  messageIds: readonly string[];
}

/**
 * Looks in the chat's current session for each message, in one read of its transcript; an
 * entry per message, undefined where the transcript does not hold it.
 */
export type FindInTranscript = (
  chatId: ChatId,
  messages: readonly MessageIdentity[],
) => Promise<(Sighting | undefined)[]>;

/**
 * Messages of one chat replayed together: one that the transcript does not hold, or a run of
 * messages it holds in the same place (answered by one turn, or waiting in the context).
 */
export interface ReplayGroup<Row> {
  rows: Row[];
  sighting: Sighting | undefined;
}

/**
 * A chat's messages, in order, in runs to replay together: consecutive ones answered by the
 * same turn, or waiting unanswered in the same session's context; each one the transcript does
 * not hold alone. `sightings` has an entry per row.
 */
export function replayGroups<Row>(
  rows: readonly Row[],
  sightings: readonly (Sighting | undefined)[],
): ReplayGroup<Row>[] {
  const groups: ReplayGroup<Row>[] = [];
  rows.forEach((row, index) => {
    const sighting = sightings[index];
    const previous = groups.at(-1);
    if (sighting && previous?.sighting && sameRun(previous.sighting, sighting)) {
      previous.rows.push(row);
    } else {
      groups.push({ rows: [row], sighting });
    }
  });
  return groups;
}

function sameRun(left: Sighting, right: Sighting): boolean {
  if (left.agentSessionId !== right.agentSessionId) return false;
  if (left.state === "answered" && right.state === "answered") return left.turn === right.turn;
  return left.state === "unanswered" && right.state === "unanswered";
}

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

/** What the contact's side put into a turn: one transcript entry's ids and envelope nonces. */
interface TurnInput {
  ids: string[];
  nonces: string[];
  /** Steps the model had taken in the turn when this came in. */
  atStep: number;
}

interface Turn {
  inputs: TurnInput[];
  /** What the model said and did, in order; a tool call is `undefined`. */
  steps: (string | undefined)[];
  failed: boolean;
}

/**
 * A message the CLI took in while a turn ran (during a tool call): an attachment entry that
 * carries its text and the id it was pushed with, folded into the turn.
 */
function queuedMessageOf(line: TranscriptLine): { id: unknown; text: string } | undefined {
  const attachment = recordOf(line.attachment);
  if (line.type !== "attachment" || attachment?.type !== "queued_command") return undefined;
  return { id: attachment.source_uuid, text: textOf(attachment.prompt) };
}

/**
 * Transcript entries (the lines of the CLI's `<session id>.jsonl`) as turns: a prompt opens a
 * turn unless the current one has no answer yet (the CLI merges a prompt cut off by a crash, or
 * whose turn failed, with the next, and the next turn's answer answers both). A prompt entry may
 * hold several messages (the CLI folds messages steered into a running turn into one entry), and
 * a message that came during a tool call joins the running turn as an attachment. Only the
 * model's own messages count as answers: the CLI's `<synthetic>` ones ("No response requested."
 * after a prompt a crash cut off) and API error messages do not.
 */
export function turnsOf(entries: readonly unknown[]): Turn[] {
  const turns: Turn[] = [];
  let current: Turn | undefined;
  const addInput = (turn: Turn, id: unknown, text: string) => {
    turn.inputs.push({
      ids: typeof id === "string" ? [id] : [],
      nonces: envelopeNoncesIn(text),
      atStep: turn.steps.length,
    });
  };
  for (const entry of entries) {
    const line = recordOf(entry);
    if (!line || line.isSidechain === true) continue;
    const queued = queuedMessageOf(line);
    if (queued) {
      if (current) addInput(current, queued.id, queued.text);
      continue;
    }
    const message = recordOf(line.message);
    const blocks = contentBlocks(message?.content);
    if (line.type === "user" && line.isMeta !== true && line.isCompactSummary !== true) {
      if (blocks.some((block) => block.type === "tool_result")) continue;
      if (!blocks.some((block) => block.type === "text")) continue;
      if (!current || current.steps.length > 0) {
        current = { inputs: [], steps: [], failed: false };
        turns.push(current);
      }
      // Merged with a failed attempt: this prompt's answer is the turn's.
      current.failed = false;
      addInput(current, line.uuid, textOf(blocks));
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
 * Where `message` stands in `turns` (see `Sighting`, less the session), by its envelope's nonce
 * or one of its ids. Answered means a finished turn answered it: the turn did not fail, its last
 * step is text, and the model took a step after the message came in; one cut off mid-way (a tool
 * call without its outcome, no answer at all) is no answer.
 */
export function sightingIn(
  turns: readonly Turn[],
  message: MessageIdentity,
): { state: "answered"; text: string; turn: number } | { state: "unanswered" } | undefined {
  const ids = new Set(message.messageIds);
  const nonce = message.envelopeNonce;
  const holds = (input: TurnInput) =>
    (nonce !== undefined && input.nonces.includes(nonce)) || input.ids.some((id) => ids.has(id));
  const turn = turns.findIndex((candidate) => candidate.inputs.some(holds));
  if (turn === -1) return undefined;
  const { inputs, steps, failed } = turns[turn]!;
  const input = inputs.find(holds)!;
  if (failed || typeof steps.at(-1) !== "string" || steps.length <= input.atStep) {
    return { state: "unanswered" };
  }
  const text = steps
    .filter((step): step is string => step !== undefined)
    .join("\n\n")
    .trim();
  return { state: "answered", text, turn };
}

/** How far back a replayed message's turn is looked for: it is among the latest. */
const RECENT_ENTRIES = 2_000;

export function createTranscriptFinder(deps: {
  registry: Registry;
  transcripts: TranscriptStore;
}): FindInTranscript {
  return async (chatId, messages) => {
    const sessionId = deps.registry.get(chatId)?.session_id;
    if (!sessionId) return messages.map(() => undefined);
    const turns = turnsOf(await deps.transcripts.recentEntries(sessionId, RECENT_ENTRIES));
    return messages.map((message) => {
      const sighting = sightingIn(turns, message);
      return sighting && { ...sighting, agentSessionId: sessionId };
    });
  };
}
