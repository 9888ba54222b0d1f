/**
 * The registry held in memory: entries, the session-name index and the rules every adapter
 * keeps. Used directly in unit tests of the manager, and as the in-memory half of the row
 * registry (`row-registry.ts`, which adds persistence through `onChange`).
 */
import { DispatchError } from "../utils/errors.js";
import type { ChatId } from "../utils/ids.js";
import {
  classifyChange,
  sessionNameProblem,
  type ChangeKind,
  type PreviousSession,
  type Registry,
  type RegistryEntry,
} from "./registry.js";

export interface MemoryRegistryOptions {
  /**
   * Called after every change (a set or update that changed a field, a remove that removed
   * something) with the chat and what the change puts at stake.
   */
  onChange?: (chatId: ChatId, kind: ChangeKind) => void;
}

/** Most entries have no earlier sessions: they share one frozen empty list. */
const NO_PREVIOUS_SESSIONS: readonly PreviousSession[] = Object.freeze([]);

export class MemoryRegistry implements Registry {
  private readonly byChat = new Map<ChatId, RegistryEntry>();
  /**
   * Lower-cased session name -> the chats holding it: one, or the chats of one person's session
   * (or, from a hand edit, chats that disagree on the session id: `duplicateNames`).
   */
  private readonly holders = new Map<string, Set<ChatId>>();
  private readonly onChange: (chatId: ChatId, kind: ChangeKind) => void;
  private closed = false;
  private dirty = false;
  /**
   * How many `flush()` calls found changes to write: what a durable adapter would have written.
   * Lets tests of callers assert that a change was flushed.
   */
  writes = 0;

  constructor(options: MemoryRegistryOptions = {}) {
    const onChange = options.onChange ?? (() => {});
    this.onChange = (chatId, kind) => {
      this.dirty = true;
      onChange(chatId, kind);
    };
  }

  get size(): number {
    return this.byChat.size;
  }

  get(chatId: ChatId): RegistryEntry | undefined {
    return this.byChat.get(chatId);
  }

  entries(): IterableIterator<[ChatId, RegistryEntry]> {
    return this.byChat.entries();
  }

  isNameTaken(name: string): boolean {
    return this.holders.has(name.toLowerCase());
  }

  chatsNamed(name: string): ChatId[] {
    return [...(this.holders.get(name.toLowerCase()) ?? [])];
  }

  set(chatId: ChatId, entry: RegistryEntry): void {
    this.assertOpen();
    const name = entry.session_name;
    const problem = sessionNameProblem(name);
    if (problem !== undefined) {
      throw invalidEntry(chatId, `its session name "${name}" ${problem}`);
    }
    const existing = this.byChat.get(chatId);
    const renamed = existing !== undefined && existing.session_name !== name;
    // Taking a name other chats hold is joining their session (one person's handles): allowed
    // only with their session id. A name of one's own never changes but by such a join.
    if (
      (existing === undefined && !this.isFreeOrJoined(chatId, entry)) ||
      (renamed && !this.joins(chatId, entry))
    ) {
      if (renamed) {
        throw invalidEntry(
          chatId,
          `it would rename session "${existing.session_name}" to "${name}", and a session name never changes (resume needs the same folder); a chat may only join a session other chats hold, with its session id`,
        );
      }
      throw invalidEntry(
        chatId,
        `session name "${name}" belongs to another chat's session; pick one for which isNameTaken() is false, or join that session with its session_id`,
      );
    }
    const kind = classifyChange(existing, entry);
    if (kind === undefined) return; // equal field for field: nothing to store or write
    this.put(chatId, entry);
    this.onChange(chatId, kind);
  }

  update(chatId: ChatId, patch: Partial<RegistryEntry>): RegistryEntry {
    this.assertOpen();
    const existing = this.byChat.get(chatId);
    if (existing === undefined) {
      throw new DispatchError(
        "registry_entry_missing",
        `Cannot update chat ${chatId}: it has no registry entry. Create it with set() first.`,
      );
    }
    const merged: Record<string, unknown> = { ...existing };
    for (const [key, value] of Object.entries(patch)) {
      if (value !== undefined) merged[key] = value;
    }
    const next = merged as unknown as RegistryEntry;
    this.set(chatId, next);
    return this.byChat.get(chatId) ?? next;
  }

  remove(chatId: ChatId): boolean {
    this.assertOpen();
    const existing = this.byChat.get(chatId);
    if (existing === undefined) return false;
    this.byChat.delete(chatId);
    this.forgetName(chatId, existing.session_name);
    this.onChange(chatId, "resume");
    return true;
  }

  /** Whether there are changes no `flush()` has covered yet. */
  get isDirty(): boolean {
    return this.dirty;
  }

  flush(): Promise<void> {
    if (this.dirty) {
      this.writes += 1;
      this.dirty = false;
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }

  /**
   * Puts an entry read from storage in place without the checks `set` makes (the caller has
   * validated it) and without `onChange`. The registry takes the object over and freezes it
   * (and its `previous_session_ids`) where it is, instead of copying ten thousand entries at
   * start. Duplicate names from a hand-edited file are allowed here; `duplicateNames()` reports
   * them.
   */
  load(chatId: ChatId, entry: RegistryEntry): void {
    const owned = entry as { previous_session_ids: readonly PreviousSession[] };
    if (entry.previous_session_ids.length === 0) {
      owned.previous_session_ids = NO_PREVIOUS_SESSIONS;
    } else {
      for (const item of entry.previous_session_ids) Object.freeze(item);
      Object.freeze(entry.previous_session_ids);
    }
    this.index(chatId, Object.freeze(entry));
  }

  /**
   * Drops a chat's entry without `onChange`: storage no longer holds it (another node removed
   * it). Returns whether there was one.
   */
  unload(chatId: ChatId): boolean {
    const existing = this.byChat.get(chatId);
    if (existing === undefined) return false;
    this.byChat.delete(chatId);
    this.forgetName(chatId, existing.session_name);
    return true;
  }

  /** Session names held by chats that are not one session (they disagree on the session id). */
  duplicateNames(): string[] {
    return [...this.holders]
      .filter(([, chats]) => {
        const ids = new Set([...chats].map((chatId) => this.byChat.get(chatId)?.session_id));
        return chats.size > 1 && (ids.size > 1 || ids.has(null));
      })
      .map(([name]) => name);
  }

  /** Whether `entry`'s name is free for a new chat, or taken by a session it joins. */
  private isFreeOrJoined(chatId: ChatId, entry: RegistryEntry): boolean {
    return !this.isNameTaken(entry.session_name) || this.joins(chatId, entry);
  }

  /** Whether other chats hold `entry`'s name, all with its session id (not null). */
  private joins(chatId: ChatId, entry: RegistryEntry): boolean {
    const others = [...(this.holders.get(entry.session_name.toLowerCase()) ?? [])].filter(
      (holder) => holder !== chatId,
    );
    return (
      others.length > 0 &&
      entry.session_id !== null &&
      others.every((holder) => this.byChat.get(holder)?.session_id === entry.session_id)
    );
  }

  /** Stores a frozen copy: the caller's object stays its own and unfrozen. */
  private put(chatId: ChatId, entry: RegistryEntry): void {
    const existing = this.byChat.get(chatId);
    const previous = entry.previous_session_ids;
    // An update carries the stored (already frozen) list along: share it rather than copy it.
    const frozenPrevious =
      previous.length === 0
        ? NO_PREVIOUS_SESSIONS
        : previous === existing?.previous_session_ids
          ? previous
          : Object.freeze(previous.map((item) => Object.freeze({ ...item })));
    this.index(chatId, Object.freeze({ ...entry, previous_session_ids: frozenPrevious }));
  }

  private index(chatId: ChatId, entry: RegistryEntry): void {
    const existing = this.byChat.get(chatId);
    if (existing !== undefined) this.forgetName(chatId, existing.session_name);
    this.byChat.set(chatId, entry);
    const key = entry.session_name.toLowerCase();
    let chats = this.holders.get(key);
    if (chats === undefined) {
      chats = new Set();
      this.holders.set(key, chats);
    }
    chats.add(chatId);
  }

  private forgetName(chatId: ChatId, name: string): void {
    const key = name.toLowerCase();
    const chats = this.holders.get(key);
    chats?.delete(chatId);
    if (chats?.size === 0) this.holders.delete(key);
  }

  private assertOpen(): void {
    if (this.closed) {
      throw new DispatchError(
        "registry_closed",
        "The session registry is closed (dispatch is shutting down); the change was not made.",
      );
    }
  }
}

export function createMemoryRegistry(options: MemoryRegistryOptions = {}): MemoryRegistry {
  return new MemoryRegistry(options);
}

function invalidEntry(chatId: ChatId, reason: string): DispatchError {
  return new DispatchError(
    "registry_invalid_entry",
    `Cannot store the registry entry for chat ${chatId}: ${reason}.`,
  );
}
