/**
 * Replay at start: every message the journal recorded but holds unanswered (a crash, a stop
 * before its turn ended) is given to its session again, each chat's in the order they arrived,
 * after one look at where each stands in the chat's transcript (`earlier-answer.ts`): answered
 * there, that answer is sent; in the context unanswered, the session is reminded of it; else it
 * is handed over again under a new id. The hand-over itself is the inbox's (`inbox.ts`).
 */
import type { Config } from "../config/schema.js";
import type { Delivery } from "../core/session-manager.js";
import type { TurnReply } from "../core/session.js";
import type { SubmitResult } from "../channels/http/control-plane.js";
import type { WaitedReply } from "../channels/http/http-reply-channel.js";
import { describeError } from "../utils/errors.js";
import type { AgentSessionId } from "../utils/ids.js";
import type { Logger } from "../logging/logger.js";
import type { InboundRow, Journal } from "../store/journal.js";
import type { Registry } from "../store/registry.js";
import {
  agentMessageIds,
  replayMessageId,
  replayGroups,
  type FindInTranscript,
  type ReplayGroup,
  type Sighting,
} from "./earlier-answer.js";
import type { RecordedMessage, Taken } from "./inbox.js";
import { chatKeyOf, normaliseChatIdFor } from "./intake.js";
import { unansweredReminder } from "./unanswered-reminder.js";

/** The inbox's steps a replay hands its messages over with. */
export interface InboxHandOver {
  /** Identity, tier and wrapping, then into the session, under `agentMessageId`. */
  deliverRecorded(row: RecordedMessage, agentMessageId: string): Promise<Taken>;
  /** Identity, tier and wrapping, in the envelope the message had before. */
  prepare(row: RecordedMessage): Promise<Delivery>;
  /** Into the session on behalf of `rows`; a `Taken` per row, answered together. */
  handOver(
    rows: readonly RecordedMessage[],
    delivery: Delivery & { messageId: string },
  ): Promise<Taken[]>;
  /** The reply to a message of the channel that answers in its request (HTTP). */
  waitInRequest(row: RecordedMessage): Promise<WaitedReply> | undefined;
}

export interface ReplayDeps {
  journal: Journal;
  registry: Registry;
  config: Config;
  logger: Logger;
  /** Where each message stands in its chat's transcript (`InboxDeps.findInTranscript`). */
  findInTranscript?: FindInTranscript;
  /** Records and sends an answer found in the transcript as the reply path does. */
  onRecoveredReply?(reply: TurnReply): Promise<void>;
  /** The inbox's messages being answered, by journal id: a replayed row is claimed there first. */
  inflight: Map<number, Promise<Taken>>;
  inbox: InboxHandOver;
  /** Only the rows it picks (a cluster's node replays the sessions it takes); default: all. */
  include?: (row: InboundRow) => boolean;
}

/**
 * Gives every message recorded but not answered before a restart to its session again: each
 * chat's in the order they arrived, the chats side by side (one slow session start must not
 * hold up every chat after it).
 */
export async function replayPending(deps: ReplayDeps): Promise<number> {
  const pending = (await deps.journal.pendingInbound()).filter(
    (row) => !deps.inflight.has(row.id) && (deps.include?.(row) ?? true),
  );
  const byChat = new Map<string, { row: InboundRow; claim: Deferred<Taken> }[]>();
  for (const row of pending) {
    // Claimed before the first await: a client that repeats a message id while the rows
    // before it are replayed joins its replay, instead of handing it over a second time.
    const claim = deferred<Taken>();
    deps.inflight.set(row.id, claim.promise);
    const key = chatKeyOf(row.chatId, deps.config);
    byChat.set(key, [...(byChat.get(key) ?? []), { row, claim }]);
  }
  await Promise.all([...byChat.values()].map((claimed) => replayChat(deps, claimed)));
  return pending.length;
}

/**
 * One chat's open messages, in order, after one look at its transcript: a run answered there
 * by one turn gets that answer; a run the context holds unanswered gets one reminder; each
 * message it does not hold is handed over again.
 */
async function replayChat(
  deps: ReplayDeps,
  claimed: { row: InboundRow; claim: Deferred<Taken> }[],
): Promise<void> {
  const claims = new Map(claimed.map(({ row, claim }) => [row.id, claim]));
  const rows = claimed.map(({ row }) => row);
  for (const group of replayGroups(rows, await sightingsOf(deps, rows))) {
    for (const row of group.rows) {
      deps.logger.info("message-replay", {
        channel: row.channel,
        chatId: row.chatId,
        id: row.id,
      });
    }
    const taken = replay(deps, group);
    group.rows.forEach((row, index) => {
      const one = taken.then((all) => all[index]!);
      claims.get(row.id)!.resolve(one);
      void one.then(
        ({ answered }) =>
          answered.finally(() => deps.inflight.delete(row.id)).catch(() => undefined),
        (error: unknown) => {
          deps.inflight.delete(row.id);
          deps.logger.warn("message-replay-refused", {
            id: row.id,
            cause: describeError(error),
          });
        },
      );
    });
    // Accepting in order keeps the chat's messages in the order they arrived.
    await taken.catch(() => undefined);
  }
}

/**
 * Where each of one chat's rows stands in its transcript. Not knowing means handing them over
 * again: a second answer beats none.
 */
async function sightingsOf(
  deps: ReplayDeps,
  rows: readonly InboundRow[],
): Promise<(Sighting | undefined)[]> {
  const unknown = rows.map(() => undefined);
  if (!deps.findInTranscript || rows.every(neverHandedOver)) return unknown;
  try {
    return await deps.findInTranscript(
      normaliseChatIdFor(rows[0]!.chatId, deps.config),
      rows.map((row) => ({
        ...(row.envelopeNonce === undefined ? {} : { envelopeNonce: row.envelopeNonce }),
        messageIds: agentMessageIds(row.uuid, row.attempts),
      })),
    );
  } catch (error) {
    deps.logger.warn("transcript-lookup-failed", {
      chatId: rows[0]!.chatId,
      cause: describeError(error),
    });
    return unknown;
  }
}

/** One group again after a restart; a `Taken` per row, in the group's order. */
async function replay(
  deps: ReplayDeps,
  { rows, sighting }: ReplayGroup<InboundRow>,
): Promise<Taken[]> {
  if (sighting?.state === "answered") return answerFromTranscript(deps, rows, sighting);
  if (sighting?.state === "unanswered") return remind(deps, rows, sighting.agentSessionId);
  const [row] = rows;
  // Never given to an agent (a cluster's node woken for it, or one that died before): the first
  // hand-over, under its own id.
  if (neverHandedOver(row!)) return [await deps.inbox.deliverRecorded(row!, row!.uuid)];
  // Not in the transcript: a new hand-over, under a new id (the CLI skips an id its
  // transcript already holds, and would never answer).
  const replays = await deps.journal.recordAttempt(row!.id);
  return [await deps.inbox.deliverRecorded(row!, replayMessageId(row!.uuid, replays))];
}

/** Records and sends an answer found in the transcript, as if its turn had just ended. */
async function answerFromTranscript(
  deps: ReplayDeps,
  rows: readonly InboundRow[],
  earlier: Extract<Sighting, { state: "answered" }>,
): Promise<Taken[]> {
  const chatId = normaliseChatIdFor(rows[0]!.chatId, deps.config);
  // Before the answer goes out: it serves the requests waiting for these rows on its way.
  const waiting = rows.map((row) => deps.inbox.waitInRequest(row));
  const messageIds = rows.map((row) => {
    deps.logger.info("message-answer-recover", { chatId, id: row.id });
    return agentMessageIds(row.uuid, row.attempts).at(-1)!;
  });
  await deps.onRecoveredReply?.({
    chatId,
    agentSessionId: earlier.agentSessionId as AgentSessionId,
    messageIds,
    recordIds: rows.map((row) => row.id),
    text: earlier.text,
    isError: false,
    totalCostUsd: 0,
    durationMs: 0,
  });
  const entry = deps.registry.get(chatId);
  return rows.map((row, index) => {
    const accepted: SubmitResult = {
      chat_id: chatId,
      message_id: row.externalId ?? row.uuid,
      session_name: entry?.session_name ?? "",
      session_id: earlier.agentSessionId,
    };
    const waited = waiting[index];
    const answered = waited
      ? waited.then((answer) => ({ ...accepted, reply: answer.reply }))
      : Promise.resolve(accepted);
    answered.catch(() => undefined);
    return { accepted, answered };
  });
}

/**
 * Messages the session's context holds without an answer: handed over once more as one
 * message whose text, for that session, is a reminder that does not repeat them; a session
 * that never saw them (a replacement) gets them in full. The turn it starts answers them all.
 */
async function remind(
  deps: ReplayDeps,
  rows: readonly InboundRow[],
  agentSessionId: string,
): Promise<Taken[]> {
  const deliveries: Delivery[] = [];
  for (const row of rows) deliveries.push(await deps.inbox.prepare(row));
  const replays: number[] = [];
  for (const row of rows) replays.push(await deps.journal.recordAttempt(row.id));
  const last = deliveries.at(-1)!;
  deps.logger.info("message-remind", {
    chatId: last.chatId,
    ids: rows.map((row) => row.id),
  });
  return deps.inbox.handOver(rows, {
    ...last,
    // As the CLI folds messages given while a turn runs.
    text: deliveries.map((delivery) => delivery.text).join("\n"),
    messageId: replayMessageId(rows.at(-1)!.uuid, replays.at(-1)!),
    inContext: {
      sessionId: agentSessionId as AgentSessionId,
      reminder: unansweredReminder(rows.length),
    },
  });
}

/**
 * A row no agent can have seen: its envelope nonce is recorded before any hand-over, and a
 * replay counts an attempt first.
 */
function neverHandedOver(row: InboundRow): boolean {
  return row.status === "received" && row.envelopeNonce === undefined && row.attempts === 0;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T | Promise<T>): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T | Promise<T>) => void;
  const promise = new Promise<T>((done) => (resolve = done));
  promise.catch(() => undefined); // a claim nobody joined must not reject unhandled
  return { promise, resolve };
}
