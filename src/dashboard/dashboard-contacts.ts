/**
 * The dashboard's contacts port: what the Contacts view reads and changes. The daemon implements
 * it (`daemon-contacts.ts`: contacts.json through `store/contacts-file-writer.ts`, applied at
 * once); the route tests use a fake. Field names are snake_case: they are the JSON the page reads.
 */
import type { ContactInput } from "../identity/contacts-edit.js";

export type { ContactInput } from "../identity/contacts-edit.js";

/** A registered chat's session, as the Contacts view names it. */
export interface ContactSession {
  chat_id: string;
  session_name: string;
  contact_name: string | null;
  /** The tier the session runs with: a changed contact's new tier applies from its next start. */
  tier: string;
  state: string;
}

export interface ContactHandle {
  /** As written in contacts.json. */
  raw: string;
  /** The chat id it stands for; null when it is not a valid handle. */
  chat_id: string | null;
  /** Why it is not valid, when it is not. */
  problem: string | null;
  session: ContactSession | null;
}

export interface ContactView {
  /** Its place in the file's `contacts`: what an edit names. */
  index: number;
  name: string;
  tier: string;
  handles: ContactHandle[];
}

export interface GroupView {
  index: number;
  name: string;
  tier: string;
  handle: ContactHandle;
}

export interface ContactsView {
  /** Where the contacts are kept. */
  file: string;
  /** The file's version, to send back with a change; null when there is no file yet. */
  version: string | null;
  /**
   * What is wrong with the file as it is, as the daemon's loader says it (the daemon keeps the
   * contacts it loaded last meanwhile). A change must leave none.
   */
  problems: string[];
  /** False when the file is not JSON of the right shape: it must be fixed by hand first. */
  editable: boolean;
  /** The tiers config knows, and whether each is answered. */
  tiers: { name: string; answered: boolean }[];
  contacts: ContactView[];
  groups: GroupView[];
  /** Registered chats that no contact or group claims. */
  unlisted: ContactSession[];
}

export interface DashboardContacts {
  list(): Promise<ContactsView>;
  /**
   * Each change is made to the file at `version` (from `list`), validated as the daemon validates
   * the file, written whole and applied. Throws `contacts_invalid`, `contacts_changed` (the file
   * changed meanwhile) or `not_found` (no contact at `index`).
   */
  add(contact: ContactInput, version: string | null): Promise<ContactsView>;
  update(index: number, contact: ContactInput, version: string | null): Promise<ContactsView>;
  remove(index: number, version: string | null): Promise<ContactsView>;
}
