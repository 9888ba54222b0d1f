/**
 * Signal's own kinds of chat id, as dispatch keys them. A Signal sender with a phone number is
 * that number (E.164, the same chat as on every other channel); these are the two Signal adds:
 *
 * - `signal:<uuid>`: a sender who shares no phone number, by their account id (ACI), lower-case.
 *   An individual, like a phone number: contacts.json may list it among a contact's handles.
 * - `signal-group:<id>`: a Signal group, by its group id. signal-cli writes group ids in standard
 *   base64, whose `/` may not stand in a chat id (it reaches file names) and whose leading `+`
 *   would read as a phone number; the id is kept in base64url (`-` for `+`, `_` for `/`), which
 *   maps back one to one. Either spelling is accepted after the prefix.
 *
 * Pure; `chat-id.ts` calls `normaliseSignalId` before its other shapes.
 */
import { DispatchError } from "../utils/errors.js";
import { asChatId, type ChatId } from "../utils/ids.js";

export const SIGNAL_ACCOUNT_PREFIX = "signal:";
export const SIGNAL_GROUP_PREFIX = "signal-group:";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Base64 or base64url, padded or not; group ids are 16 (v1) or 32 (v2) bytes.
const GROUP_ID = /^[A-Za-z0-9+/_-]{16,120}={0,2}$/;

/**
 * The chat id for a Signal address written as `signal:<uuid>` or `signal-group:<id>` (prefix in
 * any case), normalised; `undefined` when `trimmed` has neither prefix. Throws `invalid_chat_id`
 * for a prefix followed by something that is not a UUID or a group id.
 */
export function normaliseSignalId(raw: string, trimmed: string): ChatId | undefined {
  const lower = trimmed.toLowerCase();
  if (lower.startsWith(SIGNAL_GROUP_PREFIX)) {
    const id = trimmed.slice(SIGNAL_GROUP_PREFIX.length).trim();
    if (!GROUP_ID.test(id)) {
      throw invalidSignalId(
        raw,
        "a Signal group id in base64, as `signal-cli listGroups` shows it",
      );
    }
    return signalGroupChatId(id);
  }
  if (lower.startsWith(SIGNAL_ACCOUNT_PREFIX)) {
    const id = trimmed.slice(SIGNAL_ACCOUNT_PREFIX.length).trim();
    if (!UUID.test(id)) throw invalidSignalId(raw, "a Signal account id (a UUID)");
    return signalAccountChatId(id);
  }
  return undefined;
}

/** `signal:<uuid>` for a sender known only by their account id. */
export function signalAccountChatId(uuid: string): ChatId {
  return asChatId(`${SIGNAL_ACCOUNT_PREFIX}${uuid.toLowerCase()}`);
}

/** `signal-group:<id in base64url>` for a group id as signal-cli writes it (base64). */
export function signalGroupChatId(groupId: string): ChatId {
  return asChatId(`${SIGNAL_GROUP_PREFIX}${groupId.replaceAll("+", "-").replaceAll("/", "_")}`);
}

/** Whether a normalised chat id is a Signal account id (an individual). */
export function isSignalAccountChatId(chatId: string): boolean {
  return chatId.startsWith(SIGNAL_ACCOUNT_PREFIX);
}

/** Where signal-cli sends to for a chat id: `{ groupId }` in base64, or `{ recipient }`. */
export type SignalTarget = { groupId: string } | { recipient: string };

/**
 * The target of a normalised chat id: a group's id back in standard base64, an account's UUID,
 * or a phone number as it is. Anything else (an email, an iMessage group) has no Signal target.
 */
export function signalTargetOf(chatId: string): SignalTarget | undefined {
  if (chatId.startsWith(SIGNAL_GROUP_PREFIX)) {
    const id = chatId.slice(SIGNAL_GROUP_PREFIX.length);
    return { groupId: id.replaceAll("-", "+").replaceAll("_", "/") };
  }
  if (chatId.startsWith(SIGNAL_ACCOUNT_PREFIX)) {
    return { recipient: chatId.slice(SIGNAL_ACCOUNT_PREFIX.length) };
  }
  if (chatId.startsWith("+")) return { recipient: chatId };
  return undefined;
}

function invalidSignalId(raw: string, expected: string): DispatchError {
  const shown = raw.length > 80 ? `${raw.slice(0, 80)}...` : raw;
  return new DispatchError(
    "invalid_chat_id",
    `Invalid chat id ${JSON.stringify(shown)}: after its prefix it should hold ${expected}.`,
  );
}
