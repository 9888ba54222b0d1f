/**
 * Changes to the contacts book as a person makes them from the dashboard: add a contact, replace
 * one, remove one. Pure: each returns a new file and leaves the groups and every other contact as
 * they were, in their order. Validation is the loader's (`parseContacts`), run on the result.
 */
import { DispatchError } from "../utils/errors.js";
import type { ContactsFile } from "./contacts-file.js";

export type ContactEntry = ContactsFile["contacts"][number];

/** The contact as it is added or edited. */
export interface ContactInput {
  name: string;
  tier: string;
  handles: string[];
}

export type ContactEdit =
  | { kind: "add"; contact: ContactInput }
  | { kind: "replace"; index: number; contact: ContactInput }
  | { kind: "remove"; index: number };

export function applyContactEdit(file: ContactsFile, edit: ContactEdit): ContactsFile {
  if (edit.kind === "add") {
    return { ...file, contacts: [...file.contacts, toEntry(edit.contact)] };
  }
  if (!Number.isInteger(edit.index) || edit.index < 0 || edit.index >= file.contacts.length) {
    throw new DispatchError(
      "not_found",
      `There is no contact ${edit.index} in contacts.json (it has ${file.contacts.length}). ` +
        "Load the contacts again: the file may have changed.",
    );
  }
  const contacts =
    edit.kind === "replace"
      ? file.contacts.map((entry, index) => (index === edit.index ? toEntry(edit.contact) : entry))
      : file.contacts.filter((_entry, index) => index !== edit.index);
  return { ...file, contacts };
}

/** Trims the name and each handle, and leaves out blank handles (an empty line in a form). */
function toEntry(contact: ContactInput): ContactEntry {
  return {
    name: contact.name.trim(),
    tier: contact.tier.trim(),
    handles: contact.handles.map((handle) => handle.trim()).filter((handle) => handle !== ""),
  };
}
