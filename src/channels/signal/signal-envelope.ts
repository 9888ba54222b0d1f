/**
 * One event of signal-cli's stream (`GET /api/v1/events`, event `receive`) as a message for
 * dispatch, or why it carries none. Pure: `signal-channel.ts` owns the stream.
 *
 * The event's data is `{"account": "+1...", "envelope": {...}}` (signal-cli's
 * `JsonReceiveMessageHandler`), the envelope as `JsonMessageEnvelope` writes it: `sourceNumber`
 * (null when the sender shares no number), `sourceUuid` (their ACI), `sourceName`, `timestamp`
 * (the sender's, which with the sender identifies the message), and one of `dataMessage`,
 * `editMessage`, `syncMessage`, `receiptMessage`, `typingMessage`, `callMessage`, `storyMessage`.
 * docs/signal.md cites the source.
 */
import type { InboundMessage } from "../channel.js";
import { signalAccountChatId, signalGroupChatId } from "../../identity/signal-address.js";

export const SIGNAL_CHANNEL = "signal";

/** signal-cli's content type for the text of a long message, sent as an attachment. */
const LONG_TEXT_TYPE = "text/x-signal-plain";
/** How much of a quoted message the agent is shown. */
const QUOTE_LIMIT = 200;

export type SignalSkipReason =
  | "not-an-object"
  | "no-envelope"
  | "other-account"
  | "own-message"
  | "no-sender"
  | "undecryptable"
  | "sync"
  | "receipt"
  | "typing"
  | "call"
  | "story"
  | "reaction"
  | "sticker"
  | "delete"
  | "group-update"
  | "expiration-update"
  | "no-text";

export type ParsedSignalEvent =
  | { kind: "message"; message: InboundMessage }
  | { kind: "skip"; reason: SignalSkipReason; externalId?: string };

/**
 * The message in one `receive` event for `account` (signal-cli's account, E.164), or why it is
 * skipped. A text-less message with attachments becomes a note naming them: the agent is told
 * something came, though dispatch does not pass the files on.
 */
export function parseSignalEvent(data: unknown, account: string): ParsedSignalEvent {
  if (!isObject(data)) return skip("not-an-object");
  const envelope = data.envelope;
  if (!isObject(envelope)) return skip("no-envelope");
  const eventAccount = text(data.account);
  if (eventAccount !== undefined && eventAccount !== account) return skip("other-account");

  const number = text(envelope.sourceNumber);
  const uuid = text(envelope.sourceUuid);
  const timestamp = integer(envelope.timestamp);
  if ((number === undefined && uuid === undefined) || timestamp === undefined) {
    return skip(isObject(data.exception) ? "undecryptable" : "no-sender");
  }
  const externalId = `${uuid ?? number}:${timestamp}`;
  const skipped = (reason: SignalSkipReason): ParsedSignalEvent => skip(reason, externalId);
  if (number === account) return skipped("own-message");
  if (isObject(envelope.syncMessage)) return skipped("sync");
  if (isObject(envelope.receiptMessage)) return skipped("receipt");
  if (isObject(envelope.typingMessage)) return skipped("typing");
  if (isObject(envelope.callMessage)) return skipped("call");
  if (isObject(envelope.storyMessage)) return skipped("story");

  const edit = isObject(envelope.editMessage) ? envelope.editMessage : undefined;
  const dataMessage = edit && isObject(edit.dataMessage) ? edit.dataMessage : envelope.dataMessage;
  if (!isObject(dataMessage)) {
    return skipped(isObject(data.exception) ? "undecryptable" : "no-text");
  }
  if (isObject(dataMessage.reaction)) return skipped("reaction");
  if (isObject(dataMessage.remoteDelete)) return skipped("delete");
  if (dataMessage.isExpirationUpdate === true) return skipped("expiration-update");
  const group = isObject(dataMessage.groupInfo) ? dataMessage.groupInfo : undefined;
  const body = text(dataMessage.message)?.trim() ?? "";
  if (group && text(group.type) === "UPDATE" && body === "") return skipped("group-update");
  const notes = attachmentNotes(dataMessage.attachments);
  if (body === "" && notes.length === 0) {
    return skipped(isObject(dataMessage.sticker) ? "sticker" : "no-text");
  }

  const lines = [
    ...(edit ? ["(edited an earlier message; the new text follows)"] : []),
    ...quoteNote(dataMessage.quote),
    ...(body === "" ? [] : [body]),
    ...notes,
  ];
  const sender = number ?? signalAccountChatId(uuid!);
  const groupId = group ? text(group.groupId) : undefined;
  const groupName = group ? text(group.groupName) : undefined;
  const message: InboundMessage = {
    channel: SIGNAL_CHANNEL,
    chatId: groupId === undefined ? sender : signalGroupChatId(groupId),
    sender,
    ...(groupId !== undefined && groupName !== undefined ? { groupName } : {}),
    text: lines.join("\n"),
    externalId,
    receivedAt: new Date(timestamp),
  };
  return { kind: "message", message };
}

function skip(reason: SignalSkipReason, externalId?: string): ParsedSignalEvent {
  return externalId === undefined ? { kind: "skip", reason } : { kind: "skip", reason, externalId };
}

/** `[attachment: photo.jpg, image/jpeg; not shown to you]`, one per file but a long text's. */
function attachmentNotes(attachments: unknown): string[] {
  if (!Array.isArray(attachments)) return [];
  return attachments.filter(isObject).flatMap((attachment) => {
    const type = text(attachment.contentType) ?? "unknown type";
    if (type === LONG_TEXT_TYPE) return []; // signal-cli already put its text in the body
    const name = text(attachment.filename);
    const caption = text(attachment.caption);
    return [
      `[attachment: ${name ? `${name}, ` : ""}${type}${caption ? `, caption "${caption}"` : ""}; ` +
        "its content is not shown to you]",
    ];
  });
}

function quoteNote(quote: unknown): string[] {
  if (!isObject(quote)) return [];
  const quoted = text(quote.text)?.trim();
  if (!quoted) return [];
  const shown = quoted.length > QUOTE_LIMIT ? `${quoted.slice(0, QUOTE_LIMIT)}...` : quoted;
  return [`(replying to: "${shown.replaceAll("\n", " ")}")`];
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function integer(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0 ? value : undefined;
}
