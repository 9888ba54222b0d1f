/**
 * The one import of an existing `sessions.json` into the registry rows, at the first start with
 * rows (`registry-rows.ts`). Whether it happened is recorded in the database with the rows, in
 * the same transaction, so it runs once per database: later starts find `sessions.json` to be the
 * export the daemon writes (`registry-export.ts`) and leave it alone.
 *
 * A file that does not parse is never taken for an empty registry, as before rows: its last good
 * copy (`sessions.json.last-good`, which the file-based registry kept) is imported instead and the
 * bad file is copied aside; with no usable copy, the start fails and says what to do, the file
 * left as it was.
 */
import { access } from "node:fs/promises";
import { systemClock, type Clock } from "../utils/clock.js";
import { DispatchError, describeError } from "../utils/errors.js";
import type { ChatId } from "../utils/ids.js";
import type { Logger } from "../logging/logger.js";
import { copyFileDurable, readFileIfExists } from "./durable-file.js";
import type { RegistryEntry } from "./registry.js";
import { parseRegistryText } from "./registry-file-format.js";
import type { RegistryImportRecord, RegistryRows } from "./registry-rows.js";

export interface ImportRegistryFileOptions {
  rows: RegistryRows;
  /** `~/dispatch/state/sessions.json`. */
  path: string;
  logger: Logger;
  /** Dates the name of a corrupt file copied aside. */
  clock?: Clock;
}

export type RegistryImportOutcome =
  | { imported: false; before: RegistryImportRecord }
  | { imported: false; racedAnotherNode: true; keptAside?: string }
  | { imported: true; entries: number; fromLastGood: boolean };

/**
 * Imports `path` into `rows` unless this database has had its import (`before`: then the caller
 * checks the file with `keepUnimportedChats` against the rows it reads).
 */
export async function importRegistryFile(
  options: ImportRegistryFileOptions,
): Promise<RegistryImportOutcome> {
  const { rows, path, logger } = options;
  const before = await rows.importRecord();
  if (before !== undefined) return { imported: false, before };
  const { entries, fromLastGood } = await readRegistryFile(options);
  refuseDuplicateNames(entries, path);
  const imported = await rows.importEntries(entries, path);
  if (!imported) {
    // Its chats may not be in the rows another node imported: keep the file before the export
    // replaces it.
    const keptAs =
      entries.size === 0
        ? undefined
        : await keepCopy(path, "not-imported", options.clock ?? systemClock);
    logger.warn("registry-import-skip", {
      path,
      reason: "another node imported into this database at the same moment",
      ...(keptAs === undefined ? {} : { keptAs, chats: entries.size }),
    });
    return {
      imported: false,
      racedAnotherNode: true,
      ...(keptAs === undefined ? {} : { keptAside: keptAs }),
    };
  }
  logger.info("registry-import", { path, into: rows.location, chats: entries.size, fromLastGood });
  return { imported: true, entries: entries.size, fromLastGood };
}

/** The file's entries (none when it does not exist), or its last good copy's. */
async function readRegistryFile(
  options: ImportRegistryFileOptions,
): Promise<{ entries: Map<ChatId, RegistryEntry>; fromLastGood: boolean }> {
  const { path, logger } = options;
  const lastGoodPath = `${path}.last-good`;
  const text = await readOrThrow(path);
  if (text === undefined) return { entries: new Map(), fromLastGood: false };
  const parsed = parseRegistryText(text);
  if (parsed.ok) return { entries: parsed.entries, fromLastGood: false };

  const lastGoodText = await readOrThrow(lastGoodPath);
  const fallback = lastGoodText === undefined ? undefined : parseRegistryText(lastGoodText);
  if (fallback === undefined || !fallback.ok) {
    const why =
      fallback === undefined ? "does not exist" : `is not usable either: ${fallback.problem}`;
    throw new DispatchError(
      "registry_corrupt",
      `The session registry ${path} cannot be loaded: ${parsed.problem}. The last good copy ` +
        `${lastGoodPath} ${why}. dispatch will not start with an empty registry, because that ` +
        `would forget which session belongs to which chat. Restore ${lastGoodPath} (or a ` +
        `backup) to ${path}, or fix ${path} by hand; delete it only after checking that its ` +
        "sessions may be forgotten.",
      { cause: parsed.cause },
    );
  }
  const keptAs = await keepCopy(path, "corrupt", options.clock ?? systemClock);
  logger.error("registry-file-corrupt", {
    path,
    keptAs,
    lastGood: lastGoodPath,
    problem: parsed.problem,
  });
  return { entries: fallback.entries, fromLastGood: true };
}

/**
 * After the database's import: when the file names chats `registered` says the rows do not hold
 * (a node that ran on its own before it joined a database another node imported into), copies it
 * aside before the export replaces it, with a warning: nothing is lost, and nothing is merged
 * behind the operator's back. Returns where it was kept.
 */
export async function keepUnimportedChats(
  options: ImportRegistryFileOptions,
  registered: (chatId: ChatId) => boolean,
): Promise<string | undefined> {
  const { path, logger } = options;
  const text = await readFileIfExists(path).catch(() => undefined);
  if (text === undefined) return undefined;
  const parsed = parseRegistryText(text);
  // A damaged export: the rows hold what counts, and the export is written again from them.
  if (!parsed.ok) return undefined;
  const unknown = [...parsed.entries.keys()].filter((chatId) => !registered(chatId));
  if (unknown.length === 0) return undefined;
  const keptAs = await keepCopy(path, "not-imported", options.clock ?? systemClock);
  logger.warn("registry-file-keep-aside", {
    path,
    keptAs,
    chats: unknown.length,
    examples: unknown.slice(0, 5),
    fix:
      "the registry in the database was imported from another sessions.json before, and these " +
      "chats are not in it. Their entries are kept in the copy: add them to the database by " +
      "hand if their sessions must go on, or delete the copy",
  });
  return keptAs;
}

/**
 * A hand-edited file can give two sessions one name; rows cannot hold that. The chats of one
 * person's session share its name and its session id, which is allowed.
 */
function refuseDuplicateNames(entries: ReadonlyMap<ChatId, RegistryEntry>, path: string): void {
  const holders = new Map<string, [ChatId, RegistryEntry][]>();
  for (const [chatId, entry] of entries) {
    const name = entry.session_name.toLowerCase();
    holders.set(name, [...(holders.get(name) ?? []), [chatId, entry]]);
  }
  const shared = [...holders]
    .filter(([, chats]) => chats.length > 1 && !isOneSession(chats.map(([, entry]) => entry)))
    .map(([name, chats]) => [name, chats.map(([chatId]) => chatId)] as const);
  if (shared.length === 0) return;
  const list = shared
    .slice(0, 5)
    .map(([name, chats]) => `"${name}" (${chats.join(", ")})`)
    .join("; ");
  throw new DispatchError(
    "registry_duplicate_names",
    `The session registry ${path} gives one session name to chats of different sessions: ` +
      `${list}. A session name is a session's folder, so only one of them can keep it. Edit the ` +
      "file so that each name is held by one session (remove the entries of chats whose " +
      "sessions may be forgotten), and start dispatch again.",
  );
}

/** Whether entries sharing a name are one session: all hold the same, known, session id. */
function isOneSession(entries: readonly RegistryEntry[]): boolean {
  const first = entries[0]?.session_id ?? null;
  return first !== null && entries.every((entry) => entry.session_id === first);
}

async function readOrThrow(path: string): Promise<string | undefined> {
  try {
    return await readFileIfExists(path);
  } catch (error) {
    throw new DispatchError(
      "registry_read_failed",
      `Could not read the session registry ${path}: ${describeError(error)}. Check that the file is readable by the user running dispatch.`,
      { cause: error },
    );
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Copies the file to `<path>.<why>-<ISO time, ':' as '-'>`, never over another file. */
async function keepCopy(path: string, why: string, clock: Clock): Promise<string> {
  const stamp = new Date(clock.now()).toISOString().replaceAll(":", "-");
  let target = `${path}.${why}-${stamp}`;
  for (let attempt = 2; await exists(target); attempt += 1) {
    target = `${path}.${why}-${stamp}-${attempt}`;
  }
  await copyFileDurable(path, target);
  return target;
}
