/**
 * What a failed turn's error text says should happen to the messages it answered. Pure: the
 * manager acts on the verdict, the supervisor (retry) or the replacer (fresh session) does it.
 * Apart so the patterns can be read, and tested, without a session around them.
 */
import type { TurnReply } from "./session.js";

/**
 * - `retriable`: the API failed the turn (overloaded, rate limited, a 5xx, the network) and the
 *   CLI already retried and gave up; worth another try later.
 * - `context-overflow`: the conversation no longer fits the context window, even after the
 *   CLI's own compaction; only a fresh session can take the message.
 */
export type TurnFailure = "retriable" | "context-overflow";

/** API errors the CLI already retried and gave up on, worth another try later. */
const RETRIABLE_TURN_ERROR =
  /overloaded|rate.?limit|\b(429|500|502|503|504|529)\b|timed? ?out|ECONNRESET|ECONNREFUSED|socket hang up/i;

/** The conversation no longer fits the context window, even after the CLI's own compaction. */
const CONTEXT_OVERFLOW = /prompt is too long|context (window|length)|too many tokens/i;

/** Undefined for a turn that went well, or one whose error is the answer as it stands. */
export function classifyTurnFailure(
  reply: Pick<TurnReply, "isError" | "errorText">,
): TurnFailure | undefined {
  if (!reply.isError) return undefined;
  const errorText = reply.errorText ?? "";
  if (RETRIABLE_TURN_ERROR.test(errorText)) return "retriable";
  if (CONTEXT_OVERFLOW.test(errorText)) return "context-overflow";
  return undefined;
}
