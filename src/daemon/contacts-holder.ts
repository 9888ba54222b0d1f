/**
 * The daemon's contacts book, replaceable while it runs. The dispatcher holds this one object and
 * reads through it on every message, so `replace` applies a new book (after the dashboard writes
 * contacts.json, or when a reload of the file is accepted) to every message from then on; a
 * message already being prepared keeps the book it looked at.
 */
import type { ContactBook } from "../identity/contacts.js";

export interface ContactsHolder extends ContactBook {
  /** The book in use now. */
  current(): ContactBook;
  /** Uses `book` from now on. */
  replace(book: ContactBook): void;
}

export function createContactsHolder(initial: ContactBook): ContactsHolder {
  let book = initial;
  return {
    get size() {
      return book.size;
    },
    lookup: (chatId) => book.lookup(chatId),
    entries: () => book.entries(),
    current: () => book,
    replace(next) {
      book = next;
    },
  };
}
