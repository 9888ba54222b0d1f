/**
 * The crash loop's verdict, from three independent views of every message: what its client got
 * back over HTTP, what the daemon's journal says about it, and what the contact's session holds
 * in its context at the end (read back through the stand-in's `[[markers]]`). Pure: the
 * evidence is gathered by `crash-loop.ts`.
 *
 * "Answered exactly once" is judged on the daemon's side: the session's context holds one
 * reply of the model per message. A message whose turn a kill interrupted before its answer
 * existed may reach the model again (it is re-asked, and may appear twice among what the contact
 * said); that is counted, not failed, since only one answer ever came of it.
 */

/** What one message's client saw. */
export interface MessageOutcome {
  marker: string;
  /** The reply text of the `200` that ended the client's attempts; undefined when none did. */
  reply?: string;
  /** Why the client gave up on it (a final error status, a deadline), when it did. */
  error?: string;
  /** POST attempts, the first included. */
  attempts: number;
  /** Sent while the turn of the message before it ran (a burst), steering that turn. */
  steered?: boolean;
}

/** The journal's row for a message after the run (undefined in the map: no row at all). */
export interface JournalEvidence {
  status: string;
}

/** The markers in a session's context, in conversation order (see `[[markers]]`). */
export interface ContextEvidence {
  /** In the contact's messages, once per time the session was given one. */
  said: string[];
  /** In the model's replies. */
  answered: string[];
}

export interface ContactEvidence {
  contact: string;
  /** In the order they were sent. */
  messages: MessageOutcome[];
  journal: ReadonlyMap<string, JournalEvidence>;
  /** Undefined when the context could not be read back. */
  context?: ContextEvidence;
}

export interface Verdict {
  sent: number;
  /** Messages whose client got a reply that names them. */
  answered: number;
  /** Messages missing from any view: no reply, not answered in the journal, or not in context. */
  lost: number;
  /** Messages the session's context holds more than one reply to. */
  duplicated: number;
  /** Messages the session was given more than once (a kill interrupted the turn): informational. */
  repeatedInContext: number;
  /** Contacts whose context holds their messages out of order, or another contact's. */
  disordered: number;
  /** One line per failure, naming the message and the view that failed. */
  problems: string[];
}

function countOf(list: readonly string[], marker: string): number {
  return list.filter((item) => item === marker).length;
}

function firstOccurrences(list: readonly string[]): string[] {
  return [...new Set(list)];
}

export function judge(contacts: readonly ContactEvidence[]): Verdict {
  const verdict: Verdict = {
    sent: 0,
    answered: 0,
    lost: 0,
    duplicated: 0,
    repeatedInContext: 0,
    disordered: 0,
    problems: [],
  };
  for (const contact of contacts) {
    const sent = contact.messages.map((message) => message.marker);
    const own = new Set(sent);
    const { context } = contact;
    if (!context) verdict.problems.push(`${contact.contact}: its context could not be read`);

    for (const message of contact.messages) {
      const { marker } = message;
      verdict.sent += 1;
      const whyLost: string[] = [];
      if (message.reply === undefined) {
        whyLost.push(`its client got no reply (${message.error ?? "no error recorded"})`);
      } else if (!message.reply.includes(marker)) {
        whyLost.push(`its client got a reply to another message: ${message.reply.slice(0, 120)}`);
      } else {
        verdict.answered += 1;
      }
      const journal = contact.journal.get(marker);
      if (journal?.status !== "answered") {
        whyLost.push(`the journal has it ${journal ? journal.status : "not at all"}`);
      }
      if (context) {
        if (countOf(context.said, marker) === 0) whyLost.push("the context does not hold it");
        else if (countOf(context.said, marker) > 1) verdict.repeatedInContext += 1;
        const replies = countOf(context.answered, marker);
        if (replies === 0) whyLost.push("the context holds no reply to it");
        if (replies > 1) {
          verdict.duplicated += 1;
          verdict.problems.push(`${marker}: answered ${replies} times in its session's context`);
        }
      }
      if (whyLost.length > 0) {
        verdict.lost += 1;
        verdict.problems.push(`${marker}: lost: ${whyLost.join("; ")}`);
      }
    }

    if (!context) continue;
    const foreign = firstOccurrences([...context.said, ...context.answered]).filter(
      (marker) => !own.has(marker),
    );
    const saidOrder = firstOccurrences(context.said).filter((marker) => own.has(marker));
    const answeredOrder = firstOccurrences(context.answered).filter((marker) => own.has(marker));
    const expected = (present: readonly string[]) =>
      sent.filter((marker) => present.includes(marker));
    const inOrder = (present: readonly string[]) =>
      present.join(" ") === expected(present).join(" ");
    if (foreign.length > 0 || !inOrder(saidOrder) || !inOrder(answeredOrder)) {
      verdict.disordered += 1;
      if (foreign.length > 0) {
        verdict.problems.push(
          `${contact.contact}: context holds others' messages: ${foreign.join(" ")}`,
        );
      }
      if (!inOrder(saidOrder)) {
        verdict.problems.push(`${contact.contact}: context out of order: ${saidOrder.join(" ")}`);
      }
      if (!inOrder(answeredOrder)) {
        verdict.problems.push(
          `${contact.contact}: replies out of order: ${answeredOrder.join(" ")}`,
        );
      }
    }
  }
  return verdict;
}

/** Whether the run kept its promise: nothing lost, nothing answered twice, all in order. */
export function passed(verdict: Verdict): boolean {
  return verdict.problems.length === 0 && verdict.sent > 0;
}
