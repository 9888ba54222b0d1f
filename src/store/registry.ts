/**
 * The session registry port: which session belongs to which chat. One entry per normalised chat
 * id, kept across restarts. Adapters sit beside this file: `row-registry.ts` (durable: a row per
 * chat in the state database or in PostgreSQL, `~/dispatch/state/sessions.json` its export) and
 * `memory-registry.ts` (its in-memory half, and a fake for tests).
 */
import { isDeepStrictEqual } from "node:util";
import type { AgentSessionId, ChatId, SessionName, Tier } from "../utils/ids.js";
import { isSafeSessionName, MAX_SESSION_NAME_LENGTH } from "../identity/session-name.js";

export type ChatKind = "individual" | "group";

/** An SDK session this chat used before; kept so an old transcript can still be found. */
export interface PreviousSession {
  readonly session_id: AgentSessionId;
  /** ISO date-time. */
  readonly replaced_at: string;
  /** Why it was replaced, e.g. `restart`, `resume-failed`, `joined-person`. */
  readonly reason: string;
  /**
   * The session's folder when it is not this entry's: a chat that joined its person's session
   * (`reason` `joined-person`) left its own session in a folder of its own name.
   */
  readonly session_name?: SessionName;
}

/**
 * One chat's entry. Field names are snake_case because they are the file format; the first six
 * are the seed's fields. Entries are frozen: change them with `update`.
 */
export interface RegistryEntry {
  /**
   * Folder-safe (see `sessionNameProblem`); held by one chat, or by every chat of one person's
   * session (with one `session_id`). It changes only when a chat joins its person's session.
   */
  readonly session_name: SessionName;
  readonly contact_name: string | null;
  readonly tier: Tier;
  /** The SDK session id; null before the first start. */
  readonly session_id: AgentSessionId | null;
  /** ISO date-time. */
  readonly created_at: string;
  /** ISO date-time, or null before the first message. */
  readonly last_message_time: string | null;
  readonly chat_kind: ChatKind;
  /** The channel the chat last spoke on (`http`, `imessage`, ...). */
  readonly channel: string | null;
  readonly previous_session_ids: readonly PreviousSession[];
  readonly turns: number;
  readonly errors: number;
  readonly restarts: number;
}

export interface Registry {
  get(chatId: ChatId): RegistryEntry | undefined;
  entries(): IterableIterator<[ChatId, RegistryEntry]>;
  readonly size: number;
  /** Case-insensitive, O(1); a new chat's name is picked by asking it per candidate. */
  isNameTaken(name: string): boolean;
  /**
   * The chats holding session name `name` (case-insensitive): one, or the chats of one person's
   * session; empty when none. Cheap: asked on every message of a person.
   */
  chatsNamed(name: string): ChatId[];
  /**
   * Adds or replaces a chat's entry and schedules a (coalesced) write: soon for a change a resume
   * depends on, later for bookkeeping (see `classifyChange`); an entry equal to the stored one
   * changes nothing. Throws DispatchError `registry_invalid_entry` for an unsafe session name, or
   * for a name other chats hold (or a change of an existing chat's name) unless the entry joins
   * their session: it carries their `session_id`, not null. `registry_closed` after `close()`.
   */
  set(chatId: ChatId, entry: RegistryEntry): void;
  /**
   * Merges `patch` (keys whose value is `undefined` are ignored) and returns the new entry.
   * Throws DispatchError `registry_entry_missing` when the chat has no entry.
   */
  update(chatId: ChatId, patch: Partial<RegistryEntry>): RegistryEntry;
  /** Returns whether an entry was removed. */
  remove(chatId: ChatId): boolean;
  /** Resolves when every change made before the call is durable; rejects if the write failed. */
  flush(): Promise<void>;
  /** Flushes, stops timers; later changes throw `registry_closed`. */
  close(): Promise<void>;
}

export const SESSION_NAME_MAX_LENGTH = MAX_SESSION_NAME_LENGTH;

/**
 * What a change puts at stake, which decides how soon a durable adapter writes it:
 * - `resume`: a new or removed entry, or any field other than the bookkeeping ones (the session
 *   id and its history, the session name, contact, tier, chat kind, fields of a newer dispatch).
 *   Losing it could start a chat afresh or forget a transcript, so it is written promptly.
 * - `bookkeeping`: only `BOOKKEEPING_FIELDS` changed. They describe activity, every message
 *   changes them, and losing the last few seconds of them loses no conversation.
 */
export type ChangeKind = "resume" | "bookkeeping";

/** Counters and times every message or turn moves; nothing reads them to resume a session. */
export const BOOKKEEPING_FIELDS: ReadonlySet<string> = new Set<keyof RegistryEntry>([
  "last_message_time",
  "turns",
  "errors",
  "restarts",
  "channel",
]);

/**
 * The kind of the change from `before` to `after` (undefined: no entry), or undefined when they
 * are equal field for field. Pure; a key holding `undefined` counts as absent, as in the file.
 */
export function classifyChange(
  before: RegistryEntry | undefined,
  after: RegistryEntry | undefined,
): ChangeKind | undefined {
  if (before === after) return undefined;
  if (before === undefined || after === undefined) return "resume";
  const old = before as unknown as Record<string, unknown>;
  const next = after as unknown as Record<string, unknown>;
  let kind: ChangeKind | undefined;
  for (const key of new Set([...Object.keys(old), ...Object.keys(next)])) {
    const left = old[key];
    const right = next[key];
    if (left === right || isDeepStrictEqual(left, right)) continue;
    if (!BOOKKEEPING_FIELDS.has(key)) return "resume";
    kind = "bookkeeping";
  }
  return kind;
}

/**
 * Why `name` is not safe as a session name (it becomes a folder name under the transcripts
 * folder), or undefined when it is: 1 to 60 characters of `a-z`, `0-9` and `-`. That rules out
 * `/`, `\`, NUL, `..` and control characters.
 */
export function sessionNameProblem(name: string): string | undefined {
  if (name.length === 0) return "is empty";
  if (name.length > SESSION_NAME_MAX_LENGTH) {
    return `is ${name.length} characters long (at most ${SESSION_NAME_MAX_LENGTH})`;
  }
  if (!/^[a-z0-9-]+$/.test(name)) {
    return "may only contain lower-case letters a-z, digits and '-'";
  }
  // One rule for the registry and the folders it names: the identity module's grammar.
  if (!isSafeSessionName(name)) {
    return "is not a safe session name (words of a-z and 0-9 joined by single '-', at most 60 characters, not a reserved device name)";
  }
  return undefined;
}
