/**
 * The one place dispatch writes `contacts.json` (the dashboard's contacts view goes through it).
 * A write is validated exactly as the daemon validates the file at start (`parseContacts`), and
 * replaces the whole file atomically and durably (`writeFileDurable`: a temp file beside it,
 * fsynced, renamed over it, the folder fsynced): a reader, or a watcher reloading the file, sees
 * the old file or the new one, never half of either.
 *
 * Each read gives the file's `version` (a hash of its bytes; null when there is no file). A write
 * names the version it was made from and is refused with `contacts_changed` when the file has
 * changed since (edited by hand, or from another tab), so no one's edit is silently lost.
 */
import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { DispatchError, describeError } from "../utils/errors.js";
import { checkContactsFile, type ContactsFile } from "../identity/contacts-file.js";
import { parseContacts, type ContactBook, type ContactsOptions } from "../identity/contacts.js";
import { errorCode, writeFileDurable } from "./durable-file.js";

export interface ContactsFileReading {
  /** Null when there is no file. */
  version: string | null;
  /**
   * The file's entries when its JSON has the right shape; undefined with `problems` otherwise
   * (then nothing may be written over it until it is fixed by hand).
   */
  file: ContactsFile | undefined;
  problems: string[];
}

/** Reads contacts.json for editing: its version, and its entries when its shape is right. */
export async function readContactsFile(path: string): Promise<ContactsFileReading> {
  const text = await readText(path);
  if (text === undefined)
    return { version: null, file: { contacts: [], groups: [] }, problems: [] };
  const version = versionOf(text);
  let json: unknown;
  try {
    json = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch (error) {
    return {
      version,
      file: undefined,
      problems: [`${path} is not valid JSON: ${describeError(error)}. Fix it by hand.`],
    };
  }
  const checked = checkContactsFile(json);
  if (checked.problems.length > 0) return { version, file: undefined, problems: checked.problems };
  const file = {
    contacts: checked.contacts.map(({ entry }) => entry),
    groups: checked.groups.map(({ entry }) => entry),
  };
  return { version, file, problems: [] };
}

/**
 * Validates `file` as the daemon would load it, then replaces contacts.json with it, unless the
 * file on disk is no longer at `expectedVersion`. Resolves with the new book and version.
 * Throws `contacts_invalid` (listing every problem), `contacts_changed` or `contacts_unwritable`.
 */
export async function writeContactsFile(
  path: string,
  file: ContactsFile,
  options: ContactsOptions & { expectedVersion: string | null },
): Promise<{ book: ContactBook; version: string }> {
  const { expectedVersion, ...parseOptions } = options;
  const book = parseContacts(file, parseOptions);
  const current = await readText(path);
  const currentVersion = current === undefined ? null : versionOf(current);
  if (currentVersion !== expectedVersion) {
    throw new DispatchError(
      "contacts_changed",
      `${path} changed since it was read (edited by hand, or from another tab): nothing was ` +
        "written. Load the contacts again and make the change once more.",
    );
  }
  const text = `${JSON.stringify(file, null, 2)}\n`;
  try {
    await writeFileDurable(path, text, { mode: await modeOf(path) });
  } catch (error) {
    throw new DispatchError(
      "contacts_unwritable",
      `Could not write ${path}: ${describeError(error)}. Make sure the user running dispatch ` +
        "can write that file and its folder.",
      { cause: error },
    );
  }
  return { book, version: versionOf(text) };
}

function versionOf(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("base64url").slice(0, 22);
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw new DispatchError(
      "contacts_unreadable",
      `Could not read ${path}: ${describeError(error)}. Check that it is a file dispatch can read.`,
      { cause: error },
    );
  }
}

/** The file's own permissions, kept; a new file is private (0600), as contacts are. */
async function modeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).mode & 0o777;
  } catch {
    return 0o600;
  }
}
