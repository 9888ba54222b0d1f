/**
 * What a contact is told when their agent's turn was stopped by its tier's limit (`maxTurns`,
 * `maxBudgetUsd`). Pure: the session manager turns the stopped turn into this reply, which then
 * travels like any other. The turn's own text, if it wrote any, comes first.
 */
import type { TurnLimit } from "../agent/port.js";
import type { TurnReply } from "./session.js";

export const TURN_LIMIT_NOTICES: Readonly<Record<TurnLimit, string>> = {
  turns:
    "(I had to stop there: answering this took more steps than I may take for one message. " +
    "Send another message and I will carry on.)",
  spend:
    "(I had to stop there: this conversation reached its spending limit for now. " +
    "Send another message and I will carry on.)",
};

/** A turn stopped by a limit, as the reply its contact gets; any other turn as it is. */
export function replyAfterLimit(turn: TurnReply): TurnReply {
  if (!turn.limit) return turn;
  const notice = TURN_LIMIT_NOTICES[turn.limit];
  const { errorText: _errorText, ...rest } = turn;
  return { ...rest, text: turn.text ? `${turn.text}\n\n${notice}` : notice, isError: false };
}
