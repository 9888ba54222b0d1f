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
  /** Lower-cased session name -> how many chats hold it (more than one only from a hand edit). */
  private readonly nameCounts = new Map<string, number>();
  private readonly names = new Set<string>();
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
    return this.names.has(name.toLowerCase());
  }

  set(chatId: ChatId, entry: RegistryEntry): void {
    this.assertOpen();
    const name = entry.session_name;
    const problem = sessionNameProblem(name);
    if (problem !== undefined) {
      throw invalidEntry(chatId, `its session name "${name}" ${problem}`);
    }
    const existing = this.byChat.get(chatId);
    if (existing !== undefined && existing.session_name !== name) {
      throw invalidEntry(
        chatId,
        `it would rename session "${existing.session_name}" to "${name}", and a session name never changes (resume needs the same folder)`,
      );
    }
    if (existing === undefined && this.isNameTaken(name)) {
      throw invalidEntry(
        chatId,
        `session name "${name}" belongs to another chat; pick one for which isNameTaken() is false`,
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
    this.forgetName(existing.session_name);
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
    this.forgetName(existing.session_name);
    return true;
  }

  /** Session names held by more than one chat. */
  duplicateNames(): string[] {
    return [...this.nameCounts].filter(([, count]) => count > 1).map(([name]) => name);
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
    if (existing !== undefined) this.forgetName(existing.session_name);
    this.byChat.set(chatId, entry);
    const key = entry.session_name.toLowerCase();
    this.nameCounts.set(key, (this.nameCounts.get(key) ?? 0) + 1);
    this.names.add(key);
  }

  private forgetName(name: string): void {
    const key = name.toLowerCase();
    const count = (this.nameCounts.get(key) ?? 0) - 1;
    if (count > 0) {
      this.nameCounts.set(key, count);
    } else {
      this.nameCounts.delete(key);
      this.names.delete(key);
    }
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
