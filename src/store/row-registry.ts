/**
 * The session registry (`registry.ts`) as rows in a database (`registry-rows.ts`: SQLite by
 * default, PostgreSQL for a cluster). Every row is read once at open and held in memory, so reads
 * stay synchronous; a change is written through, coalesced: the chats changed since the last
 * write go in one transaction, a change a resume depends on within `flushDelayMs`, bookkeeping
 * (turns, times) within `bookkeepingDelayMs` (`classifyChange`). A write carries only the rows of
 * the chats that changed, so its cost does not grow with the number of chats registered.
 * `flush()` resolves once every earlier change is committed (durably, when one of them is a
 * resume change); `close()` writes everything.
 *
 * At open, an existing `sessions.json` is imported once (`registry-file-import.ts`); from then on
 * the daemon keeps that file current as an export (`registry-export.ts`).
 *
 * Held in memory means: a row another process changed is not seen until `reload(chatId)` reads
 * it again (a cluster's node calls it for a chat it takes over from another node).
 */
import { systemClock, type Clock } from "../utils/clock.js";
import { DispatchError, describeError } from "../utils/errors.js";
import type { ChatId } from "../utils/ids.js";
import type { Logger } from "../logging/logger.js";
import { removeStaleTempFiles } from "./durable-file.js";
import { MemoryRegistry } from "./memory-registry.js";
import type { ChangeKind, Registry, RegistryEntry } from "./registry.js";
import {
  exportSourcePath,
  readExportSource,
  recordExportSource,
  RegistryExport,
} from "./registry-export.js";
import { importRegistryFile, keepUnimportedChats } from "./registry-file-import.js";
import type { RegistryRowChange, RegistryRows } from "./registry-rows.js";

export interface RowRegistryOptions {
  rows: RegistryRows;
  logger: Logger;
  /**
   * `~/dispatch/state/sessions.json`: imported at the first open of a database, then kept current
   * as an export. Unset: neither (tests, benchmarks).
   */
  file?: string;
  /** How long the export may trail the rows. Default `DEFAULT_EXPORT_DELAY_MS` (10 s). */
  exportDelayMs?: number;
  /** How long a change a resume depends on waits for others to join its write. Default 25. */
  flushDelayMs?: number;
  /**
   * How long a bookkeeping-only change (`BOOKKEEPING_FIELDS`) may wait for its write: what a
   * `kill -9` can lose of them. Default `DEFAULT_BOOKKEEPING_DELAY_MS`.
   */
  bookkeepingDelayMs?: number;
  /** Runs the write timers. */
  clock?: Clock;
}

/**
 * Five seconds: long enough that a busy daemon (a message every few hundred milliseconds) writes
 * its bookkeeping a few times a minute rather than per message; short enough that a `kill -9`
 * loses no more than the counters and times of the last few seconds.
 */
export const DEFAULT_BOOKKEEPING_DELAY_MS = 5_000;

export interface RegistryWriteStats {
  /** Committed write transactions. */
  writes: number;
  /** Rows those transactions wrote or deleted. */
  rowsWritten: number;
  failedWrites: number;
  lastWriteMs: number;
  totalWriteMs: number;
}

const MAX_RETRY_DELAY_MS = 30_000;

export async function openRowRegistry(options: RowRegistryOptions): Promise<RowRegistry> {
  return RowRegistry.open(options);
}

export class RowRegistry implements Registry {
  readonly stats: RegistryWriteStats = {
    writes: 0,
    rowsWritten: 0,
    failedWrites: 0,
    lastWriteMs: 0,
    totalWriteMs: 0,
  };
  /** sessions.json kept current; undefined without `file`. */
  readonly export: RegistryExport | undefined;
  private readonly rows: RegistryRows;
  private readonly memory: MemoryRegistry;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly flushDelayMs: number;
  private readonly bookkeepingDelayMs: number;
  /** Chats changed since their last write began, with the most urgent kind of their changes. */
  private pending = new Map<ChatId, ChangeKind>();
  /** The chats of the write under way. */
  private writing: ReadonlyMap<ChatId, ChangeKind> = new Map();
  /** Bumped by every change; a write records the version it captured. */
  private version = 0;
  private durableVersion = 0;
  private inFlight: Promise<void> | undefined;
  /** The pending write's timer and when it fires. */
  private timer: { dueMs: number; cancel: () => void } | undefined;
  private consecutiveFailures = 0;
  private closing: Promise<void> | undefined;
  /** The last `registerExclusive` of this process, settled either way. */
  private registering: Promise<void> = Promise.resolve();

  private constructor(options: RowRegistryOptions) {
    this.rows = options.rows;
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.flushDelayMs = delayOption("flushDelayMs", options.flushDelayMs, 25);
    this.bookkeepingDelayMs = delayOption(
      "bookkeepingDelayMs",
      options.bookkeepingDelayMs,
      DEFAULT_BOOKKEEPING_DELAY_MS,
    );
    this.memory = new MemoryRegistry({
      onChange: (chatId, kind) => this.markDirty(chatId, kind),
    });
    this.export =
      options.file === undefined
        ? undefined
        : new RegistryExport({
            path: options.file,
            source: {
              get: (chatId) => this.memory.get(chatId),
              keys: () => Array.from(this.memory.entries(), ([chatId]) => chatId),
            },
            logger: this.logger,
            clock: this.clock,
            ...(options.exportDelayMs === undefined ? {} : { delayMs: options.exportDelayMs }),
          });
  }

  /** Reads every row, imports `file` once per database, and writes the export. */
  static async open(options: RowRegistryOptions): Promise<RowRegistry> {
    const registry = new RowRegistry(options);
    if (options.file !== undefined) {
      const removed = [
        ...(await removeStaleTempFiles(options.file).catch(() => [])),
        ...(await removeStaleTempFiles(exportSourcePath(options.file)).catch(() => [])),
      ];
      if (removed.length > 0) options.logger.info("registry-temp-file-remove", { files: removed });
    }
    let stored: Map<ChatId, RegistryEntry>;
    if (options.file === undefined) {
      stored = await options.rows.loadAll();
    } else {
      // Imported into the rows once per database; read after the import (this node's or
      // another's), so the rows are at least as new as it.
      const imports = { rows: options.rows, path: options.file, logger: options.logger };
      const withClock =
        options.clock === undefined ? imports : { ...imports, clock: options.clock };
      const outcome = await importRegistryFile(withClock);
      stored = await options.rows.loadAll();
      // An earlier import: the file is an export of these rows when it says so; otherwise it is
      // kept aside if it names chats the rows lack.
      const rows = stored;
      if ("before" in outcome && (await readExportSource(options.file)) !== options.rows.location) {
        await keepUnimportedChats(withClock, (chatId) => rows.has(chatId));
      }
    }
    for (const [chatId, entry] of stored) registry.memory.load(chatId, entry);
    // The file may trail the rows (a kill before its last write): bring it up to date at once.
    if (registry.export !== undefined && options.file !== undefined) {
      await registry.export.write();
      if (registry.export.stats.writes > 0) {
        await recordExportSource(options.file, options.rows.location).catch((error: unknown) => {
          options.logger.warn("registry-export-source-failed", { cause: describeError(error) });
        });
      }
    }
    return registry;
  }

  get size(): number {
    return this.memory.size;
  }
  get(chatId: ChatId): RegistryEntry | undefined {
    return this.memory.get(chatId);
  }
  entries(): IterableIterator<[ChatId, RegistryEntry]> {
    return this.memory.entries();
  }
  isNameTaken(name: string): boolean {
    return this.memory.isNameTaken(name);
  }

  chatsNamed(name: string): ChatId[] {
    return this.memory.chatsNamed(name);
  }
  set(chatId: ChatId, entry: RegistryEntry): void {
    this.memory.set(chatId, entry);
  }
  update(chatId: ChatId, patch: Partial<RegistryEntry>): RegistryEntry {
    return this.memory.update(chatId, patch);
  }
  remove(chatId: ChatId): boolean {
    return this.memory.remove(chatId);
  }

  /**
   * Reads the chat's row again and holds what it says: for a row another process (a cluster's
   * other node) changed. A chat with a change of this process not yet written keeps that change:
   * it is the newer one. Resolves to the entry now held.
   */
  async reload(chatId: ChatId): Promise<RegistryEntry | undefined> {
    // A write of ours under way may hold the chat: read after it, or its row may be the older.
    await this.inFlight?.catch(() => undefined);
    this.holdStored(chatId, await this.rows.loadOne(chatId));
    return this.memory.get(chatId);
  }

  /**
   * Holds what the rows written at or after `sinceMs` say (other nodes' chats and changes), but
   * for chats with a change of this process not yet written; returns how many it read.
   */
  async reloadChangedSince(sinceMs: number): Promise<number> {
    await this.inFlight?.catch(() => undefined);
    const stored = await this.rows.loadChangedSince(sinceMs);
    for (const [chatId, entry] of stored) this.holdStored(chatId, entry);
    return stored.size;
  }

  /**
   * `reload` for every chat holding session name `name` in the rows, and for those this process
   * holds under it: a session another node ran (its chats, its newest session id).
   */
  async reloadNamed(name: string): Promise<ChatId[]> {
    await this.inFlight?.catch(() => undefined);
    const stored = await this.rows.loadNamed(name);
    const chats = new Set([...stored.keys(), ...this.memory.chatsNamed(name)]);
    for (const chatId of chats) this.holdStored(chatId, stored.get(chatId));
    return this.memory.chatsNamed(name);
  }

  /**
   * Registers a new chat with the entry `make` gives, its name checked against the rows as well
   * as this process's memory, while no other process picks a name (`RegistryRows.withNameLock`),
   * and written before the lock is let go: two nodes never give two new chats one name. A chat
   * registered meanwhile (by another node) keeps its row, which is returned.
   */
  registerExclusive(
    chatId: ChatId,
    make: (isNameTaken: (name: string) => boolean) => RegistryEntry,
  ): Promise<RegistryEntry> {
    // One at a time in this process: each holds a connection waiting on the lock, and its work
    // needs more of the same pool; many at once would hold every connection waiting.
    const registered = this.registering.then(() => this.registerNow(chatId, make));
    this.registering = registered.then(
      () => undefined,
      () => undefined,
    );
    return registered;
  }

  private registerNow(
    chatId: ChatId,
    make: (isNameTaken: (name: string) => boolean) => RegistryEntry,
  ): Promise<RegistryEntry> {
    return this.rows.withNameLock(async () => {
      const existing = await this.reload(chatId);
      if (existing !== undefined) return existing;
      for (;;) {
        const entry = make((name) => this.memory.isNameTaken(name));
        const holders = await this.rows.loadNamed(entry.session_name);
        const unknown = [...holders].filter(([other]) => this.memory.get(other) === undefined);
        if (unknown.length === 0) {
          this.memory.set(chatId, entry);
          try {
            await this.flush();
          } catch (error) {
            // Not written under the lock: it must not be written later, outside it, under a
            // name another node may have given meanwhile.
            this.pending.delete(chatId);
            this.memory.unload(chatId);
            throw error;
          }
          return entry;
        }
        // Held by chats another node registered: known now, the name counts as taken (or, for
        // a person's session, is joined with its session id) at the next pick.
        for (const [other, held] of unknown) this.memory.load(other, held);
      }
    });
  }

  /**
   * Holds what a chat's row says (its entry, or none), unless this process has a change of that
   * chat not yet written, which is the newer.
   */
  private holdStored(chatId: ChatId, stored: RegistryEntry | undefined): void {
    if (this.pending.has(chatId) || this.writing.has(chatId)) return;
    this.memory.unload(chatId);
    if (stored !== undefined) this.memory.load(chatId, stored);
    this.export?.changed(chatId);
  }

  async flush(): Promise<void> {
    this.cancelTimer();
    const target = this.version;
    while (this.durableVersion < target) {
      if (this.inFlight !== undefined) {
        // Someone else's write: wait for it, then check whether it covered our changes.
        await this.inFlight.catch(() => undefined);
        continue;
      }
      await this.startWrite();
    }
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.memory.close();
      await this.flush();
      this.cancelTimer();
      await this.export?.close();
    })().catch((error: unknown) => {
      this.closing = undefined; // a later close() tries the write again
      throw error;
    });
    return this.closing;
  }

  private markDirty(chatId: ChatId, kind: ChangeKind): void {
    this.version += 1;
    if (this.pending.get(chatId) !== "resume") this.pending.set(chatId, kind);
    this.export?.changed(chatId);
    this.schedule(kind === "resume" ? this.flushDelayMs : this.bookkeepingDelayMs);
  }

  /**
   * Makes sure a write starts within `delayMs`: a timer due sooner is kept (its write carries
   * this change too), one due later is brought forward.
   */
  private schedule(delayMs: number): void {
    const dueMs = this.clock.now() + delayMs;
    if (this.timer !== undefined && this.timer.dueMs <= dueMs) return;
    this.cancelTimer();
    const cancel = this.clock.after(delayMs, () => {
      this.timer = undefined;
      // Failures are logged (and retried) by the write itself; nothing else to do here.
      this.flush().catch(() => undefined);
    });
    this.timer = { dueMs, cancel };
  }

  private cancelTimer(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private startWrite(): Promise<void> {
    const write = this.writeOnce().finally(() => {
      this.inFlight = undefined;
    });
    this.inFlight = write;
    return write;
  }

  private async writeOnce(): Promise<void> {
    const version = this.version;
    const batch = this.pending;
    this.pending = new Map();
    this.writing = batch;
    // The entries as they are now: a change made while this write runs is written next time.
    const changes: RegistryRowChange[] = [];
    let durable = this.closing !== undefined;
    for (const [chatId, kind] of batch) {
      changes.push([chatId, this.memory.get(chatId)]);
      if (kind === "resume") durable = true;
    }
    const started = performance.now();
    try {
      if (changes.length > 0) await this.rows.write(changes, { durable });
    } catch (error) {
      this.writing = new Map();
      // Back in the queue, unless a newer change of the chat is there already (it is as urgent).
      for (const [chatId, kind] of batch) {
        if (this.pending.get(chatId) !== "resume") this.pending.set(chatId, kind);
      }
      this.stats.failedWrites += 1;
      this.consecutiveFailures += 1;
      const code = error instanceof DispatchError ? error.code : undefined;
      this.logger.error("registry-write-failed", {
        into: this.rows.location,
        chats: changes.length,
        code,
        cause: describeError(error),
      });
      if (this.closing === undefined) {
        const delayMs = Math.min(
          this.flushDelayMs * 2 ** this.consecutiveFailures,
          MAX_RETRY_DELAY_MS,
        );
        this.schedule(Math.max(delayMs, 100));
      }
      throw new DispatchError(
        "registry_write_failed",
        `Could not write the session registry to ${this.rows.location}: ${describeError(error)}. ` +
          "The changes are kept in memory and the write is retried; " +
          (error instanceof DispatchError
            ? "see the cause for what to do."
            : "check the database."),
        { cause: error },
      );
    }
    this.writing = new Map();
    const elapsedMs = performance.now() - started;
    this.stats.writes += 1;
    this.stats.rowsWritten += changes.length;
    this.stats.lastWriteMs = elapsedMs;
    this.stats.totalWriteMs += elapsedMs;
    this.consecutiveFailures = 0;
    this.durableVersion = Math.max(this.durableVersion, version);
  }
}

function delayOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value < 0) {
    throw new DispatchError(
      "invalid_option",
      `Expected \`${name}\` to be a non-negative number of milliseconds, got \`${value}\``,
    );
  }
  return value;
}
