/**
 * How a transcript key and its entries become row values, the same in every adapter of the
 * transcript mirror (`transcript-store.ts`): the main transcript's subpath is stored as "", and an
 * entry as its JSON text. Pure.
 */
import { DispatchError, describeError } from "../utils/errors.js";
import type { SessionKey, SessionStoreEntry } from "./transcript-store.js";

/** The main transcript's subpath in a table (the SDK's `undefined`). */
export const MAIN_SUBPATH = "";

/** The key's subpath as stored; rejects "", which the SDK's contract calls invalid. */
export function storedSubpath(key: SessionKey): string {
  if (key.subpath === undefined) return MAIN_SUBPATH;
  if (key.subpath === MAIN_SUBPATH) {
    throw new DispatchError(
      "transcript_invalid_key",
      `Expected \`subpath\` of session ${key.sessionId} to be a non-empty string or absent ` +
        `(absent means the main transcript), got "".`,
    );
  }
  return key.subpath;
}

/** An entry's JSON text; rejects what is not a JSON object. */
export function serialiseEntry(entry: SessionStoreEntry): string {
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
    throw new DispatchError(
      "transcript_invalid_entry",
      `Expected a transcript entry to be a JSON object, got \`${String(entry)}\`.`,
    );
  }
  try {
    return JSON.stringify(entry);
  } catch (error) {
    throw new DispatchError(
      "transcript_invalid_entry",
      `Expected a transcript entry of type \`${String(entry.type)}\` to be JSON, but it cannot ` +
        `be serialised: ${describeError(error)}.`,
      { cause: error },
    );
  }
}

/** The entry's `uuid`, its idempotency key, or null when it has none. */
export function entryUuid(entry: SessionStoreEntry): string | null {
  return typeof entry.uuid === "string" ? entry.uuid : null;
}
