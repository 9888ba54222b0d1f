/**
 * What a resumed session is told, at a replay, about messages that reached its conversation just
 * before dispatch was stopped and that it never answered: a request for the answer that does not
 * repeat them, since its context already holds them (`unanswered-replay.ts`). The turn it
 * starts answers those messages.
 */
export function unansweredReminder(count: number): string {
  const messages = count === 1 ? "message" : `${count} messages`;
  const them = count === 1 ? "it" : "them";
  const are = count === 1 ? "is" : "are";
  return (
    `(dispatch) The last ${messages} from the person above reached you just before dispatch ` +
    `restarted, and you have not answered ${them} yet. Answer ${them} now, as you would have; ` +
    `${count === 1 ? "it" : "they"} ${are} not repeated here.`
  );
}
