/**
 * Where a `RowRegistry` (`row-registry.ts`) keeps its entries: one row per chat in a table of the
 * state database, so writing one chat's change costs the same at 100 or 100,000 chats. Adapters:
 * `sqlite-registry-rows.ts` (`~/dispatch/state/journal.db`, the default) and
 * `postgres/postgres-registry-rows.ts` (a cluster's shared database). One contract suite
 * (`test/unit/store/registry-contract.ts`) runs against both, through the registry.
 *
 * A row holds the chat id, the session name (shared by the chats of one person's session only:
 * the registry checks that two sessions never share one), the session id, and the whole entry as the JSON `sessions.json` gives
 * it for that chat (unknown keys of a newer dispatch kept), validated again when read.
 */
import { DispatchError } from "../utils/errors.js";
import type { ChatId } from "../utils/ids.js";
import type { RegistryEntry } from "./registry.js";
import { parseRegistryEntry } from "./registry-file-format.js";

/** A chat's new entry, or `undefined`: its row is deleted. */
export type RegistryRowChange = readonly [ChatId, RegistryEntry | undefined];

/** When and from where `sessions.json` was imported into the rows (once per database). */
export interface RegistryImportRecord {
  source: string;
  entries: number;
  importedAt: number;
}

export interface RegistryRows {
  /** The database, for messages: a file path, or `postgres://user@host:port/db` (no password). */
  readonly location: string;
  /** Every row, validated. Rejects `registry_corrupt` naming a row that is not a valid entry. */
  loadAll(): Promise<Map<ChatId, RegistryEntry>>;
  /** One chat's row, validated; undefined when it has none. */
  loadOne(chatId: ChatId): Promise<RegistryEntry | undefined>;
  /**
   * The rows written at or after `sinceMs` (the adapter's clock), for a cluster's node catching up
   * with what other nodes registered. A deleted row is not among them.
   */
  loadChangedSince(sinceMs: number): Promise<Map<ChatId, RegistryEntry>>;
  /** The rows of the chats holding session name `name` (lower case, as every name is). */
  loadNamed(name: string): Promise<Map<ChatId, RegistryEntry>>;
  /**
   * Runs `work` while no other process of this database picks a new chat's session name: for a
   * cluster's nodes, which each hold the rows in memory and would otherwise give two new chats
   * one name. The embedded adapter has one process (the instance lock), so it just runs `work`.
   */
  withNameLock<T>(work: () => Promise<T>): Promise<T>;
  /**
   * Writes every change in one transaction: all or none. Deletes go first, so a name a removed
   * chat held can go to another chat in the same batch. `durable`: the commit survives a power
   * cut when the promise resolves (a change a resume depends on); otherwise a crash of dispatch.
   */
  write(changes: readonly RegistryRowChange[], options: { durable: boolean }): Promise<void>;
  /** The import done into this database, or undefined when none was. */
  importRecord(): Promise<RegistryImportRecord | undefined>;
  /**
   * Writes the entries of an imported `sessions.json` and records the import, in one
   * transaction. A chat that already has a row keeps it. Resolves false, writing nothing, when an
   * import was recorded meanwhile (another node of the same database did it).
   */
  importEntries(entries: ReadonlyMap<ChatId, RegistryEntry>, source: string): Promise<boolean>;
}

/** The entry as its row stores it. */
export function encodeEntry(entry: RegistryEntry): string {
  return JSON.stringify(entry);
}

/** A row's entry, validated; throws `registry_corrupt` naming the row and what to do. */
export function decodeEntry(chatId: string, text: string, location: string): RegistryEntry {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw corruptRow(chatId, location, "its entry is not JSON", error);
  }
  const parsed = parseRegistryEntry(chatId, value);
  if (!parsed.ok) throw corruptRow(chatId, location, parsed.problem, parsed.cause);
  return parsed.entry;
}

function corruptRow(chatId: string, location: string, problem: string, cause: unknown) {
  return new DispatchError(
    "registry_corrupt",
    `The registry row of chat ${JSON.stringify(chatId)} in ${location} is not a valid entry ` +
      `(${problem}). dispatch will not start without it, because that would forget which ` +
      `session belongs to that chat. Fix the row's \`entry\` column (the JSON sessions.json ` +
      `holds for a chat), or delete the row (\`DELETE FROM registry WHERE chat_id = ...\`) ` +
      `after checking that its session may be forgotten.`,
    { cause },
  );
}
