/**
 * A person's handles: the chat ids of the contact a one-to-one chat belongs to, its own included,
 * from the contacts book. What `sessionScope: "person"` joins into one session.
 */
import type { ChatId } from "../utils/ids.js";
import type { ContactBook, ContactBookEntry } from "./contacts.js";

/** Per book (its frozen list of entries): chat id -> the chat ids of its contact. */
const indexes = new WeakMap<readonly ContactBookEntry[], ReadonlyMap<ChatId, readonly ChatId[]>>();

/**
 * The chat ids of the contact `chatId` is a handle of, `chatId` among them; undefined for a chat
 * that is no contact's handle (a stranger, a group). Built once per book, then O(1).
 */
export function handlesOfPerson(book: ContactBook, chatId: ChatId): readonly ChatId[] | undefined {
  return indexOf(book.entries()).get(chatId);
}

/** Every contact's chat ids, in file order (for the start-up merge). */
export function peopleOf(book: ContactBook): (readonly ChatId[])[] {
  return book
    .entries()
    .filter((entry) => entry.kind === "contact")
    .map((entry) => entry.handles.map((handle) => handle.chatId));
}

function indexOf(entries: readonly ContactBookEntry[]): ReadonlyMap<ChatId, readonly ChatId[]> {
  let index = indexes.get(entries);
  if (index === undefined) {
    const built = new Map<ChatId, readonly ChatId[]>();
    for (const entry of entries) {
      if (entry.kind !== "contact") continue;
      const chats = Object.freeze([...new Set(entry.handles.map((handle) => handle.chatId))]);
      for (const chatId of chats) built.set(chatId, chats);
    }
    index = built;
    indexes.set(entries, index);
  }
  return index;
}
