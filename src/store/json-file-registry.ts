/**
 * The registry as a JSON file (`~/dispatch/state/sessions.json`): loaded and validated once,
 * held in memory, written back atomically and durably, coalescing bursts of changes into one
 * write. A change a resume depends on is written within `flushDelayMs`; bookkeeping (turns,
 * times) waits up to `bookkeepingDelayMs` for company, so a stream of messages costs one write
 * per window instead of one per message; `flush()` and `close()` write everything at once. A
 * file that does not parse is never taken for an empty registry: the last good copy
 * (`sessions.json.last-good`) is loaded instead, or opening fails.
 */
import { mkdir } from "node:fs/promises";
import { fileExists } from "../utils/file-exists.js";
import { dirname } from "node:path";
import { systemClock, type Clock } from "../utils/clock.js";
import { DispatchError, describeError } from "../utils/errors.js";
import type { ChatId } from "../utils/ids.js";
import type { Logger } from "../logging/logger.js";
import {
  errorCode,
  readFileIfExists,
  removeStaleTempFiles,
  copyFileDurable,
  replaceWithCopyDurable,
  writeFileDurable,
} from "./durable-file.js";
import { MemoryRegistry } from "./memory-registry.js";
import type { ChangeKind, Registry, RegistryEntry } from "./registry.js";
import { parseRegistryText } from "./registry-file-format.js";
import { RegistryFileImage } from "./registry-file-image.js";

export interface JsonFileRegistryOptions {
  path: string;
  logger: Logger;
  /** How long a change a resume depends on waits for others to join its write. Default 25. */
  flushDelayMs?: number;
  /**
   * How long a bookkeeping-only change (`BOOKKEEPING_FIELDS`) may wait for its write: what a
   * `kill -9` can lose of them. Default `DEFAULT_BOOKKEEPING_DELAY_MS`.
   */
  bookkeepingDelayMs?: number;
  /** Runs the write timers and dates the names of corrupt files moved aside. */
  clock?: Clock;
  /**
   * Replaces the durable write, for tests that count or fail writes. A Buffer `data` is reused
   * by the next write: copy it to keep it.
   */
  writeFile?: (path: string, data: string | Buffer) => Promise<void>;
}

/**
 * Five seconds: long enough that a busy daemon (a message every few hundred milliseconds) writes
 * its bookkeeping a few times a minute rather than per message; short enough that a `kill -9`
 * loses no more than the counters and times of the last few seconds.
 */
export const DEFAULT_BOOKKEEPING_DELAY_MS = 5_000;

export interface RegistryWriteStats {
  /** Successful writes of the registry file (not counting the last-good copy). */
  writes: number;
  failedWrites: number;
  lastWriteMs: number;
  totalWriteMs: number;
}

const MAX_RETRY_DELAY_MS = 30_000;

export async function openJsonFileRegistry(
  options: JsonFileRegistryOptions,
): Promise<JsonFileRegistry> {
  return JsonFileRegistry.open(options);
}

export class JsonFileRegistry implements Registry {
  readonly path: string;
  readonly lastGoodPath: string;
  readonly stats: RegistryWriteStats = {
    writes: 0,
    failedWrites: 0,
    lastWriteMs: 0,
    totalWriteMs: 0,
  };
  private readonly memory: MemoryRegistry;
  private readonly image: RegistryFileImage;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly flushDelayMs: number;
  private readonly bookkeepingDelayMs: number;
  private readonly writeFile: (path: string, data: string | Buffer) => Promise<void>;
  /** Bumped by every change; a write records the version it captured. */
  private version = 0;
  private durableVersion = 0;
  /** The version the last good copy holds; 0 is what was loaded (or nothing, for no file). */
  private lastGoodVersion = 0;
  private inFlight: Promise<void> | undefined;
  /** The pending write's timer and when it fires. */
  private timer: { dueMs: number; cancel: () => void } | undefined;
  private consecutiveFailures = 0;
  private closing: Promise<void> | undefined;

  private constructor(options: JsonFileRegistryOptions) {
    this.path = options.path;
    this.lastGoodPath = `${options.path}.last-good`;
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.flushDelayMs = delayOption("flushDelayMs", options.flushDelayMs, 25);
    this.bookkeepingDelayMs = delayOption(
      "bookkeepingDelayMs",
      options.bookkeepingDelayMs,
      DEFAULT_BOOKKEEPING_DELAY_MS,
    );
    this.writeFile = options.writeFile ?? ((path, data) => writeFileDurable(path, data));
    this.memory = new MemoryRegistry({
      onChange: (chatId, kind) => this.markDirty(chatId, kind),
    });
    this.image = new RegistryFileImage({
      get: (chatId) => this.memory.get(chatId),
      keys: () => Array.from(this.memory.entries(), ([chatId]) => chatId),
    });
  }

  static async open(options: JsonFileRegistryOptions): Promise<JsonFileRegistry> {
    const registry = new JsonFileRegistry(options);
    await registry.load();
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
      if (this.lastGoodVersion !== this.durableVersion) {
        await this.writeLastGood(this.image.render(), this.durableVersion);
      }
    })().catch((error: unknown) => {
      this.closing = undefined; // a later close() tries the write again
      throw error;
    });
    return this.closing;
  }

  private markDirty(chatId: ChatId, kind: ChangeKind): void {
    this.version += 1;
    this.image.changed(chatId);
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
    const started = performance.now();
    try {
      await this.writeFile(this.path, this.image.render());
    } catch (error) {
      this.stats.failedWrites += 1;
      this.consecutiveFailures += 1;
      const code = errorCode(error);
      this.logger.error("registry write failed", { path: this.path, code, cause: error });
      if (this.closing === undefined) {
        const delayMs = Math.min(
          this.flushDelayMs * 2 ** this.consecutiveFailures,
          MAX_RETRY_DELAY_MS,
        );
        this.schedule(Math.max(delayMs, 100));
      }
      throw new DispatchError(
        "registry_write_failed",
        `Could not write the session registry ${this.path}: ${describeError(error)}. ` +
          "The changes are kept in memory and the write is retried; free disk space or fix " +
          "the folder's permissions.",
        { cause: error },
      );
    }
    const elapsedMs = performance.now() - started;
    this.stats.writes += 1;
    this.stats.lastWriteMs = elapsedMs;
    this.stats.totalWriteMs += elapsedMs;
    this.consecutiveFailures = 0;
    this.durableVersion = Math.max(this.durableVersion, version);
  }

  /**
   * The copy is a safety net: failing to write it is logged, not fatal. Without `data`, the
   * registry file itself is copied (at load, where it has just parsed).
   */
  private async writeLastGood(data: Buffer | undefined, version: number): Promise<void> {
    try {
      if (data === undefined) await replaceWithCopyDurable(this.path, this.lastGoodPath);
      else await this.writeFile(this.lastGoodPath, data);
      this.lastGoodVersion = version;
    } catch (error) {
      this.logger.error("registry last-good write failed", {
        path: this.lastGoodPath,
        code: errorCode(error),
        cause: error,
      });
    }
  }

  private async load(): Promise<void> {
    const { path, lastGoodPath, logger, clock } = this;
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const removed = [
      ...(await removeStaleTempFiles(path)),
      ...(await removeStaleTempFiles(lastGoodPath)),
    ];
    if (removed.length > 0) logger.info("registry temp-file remove", { files: removed });

    const text = await readOrThrow(path);
    if (text === undefined) {
      if (await fileExists(lastGoodPath)) {
        logger.warn("registry file missing; starting empty", { path, lastGood: lastGoodPath });
      }
      return;
    }
    const parsed = parseRegistryText(text);
    if (parsed.ok) {
      this.fill(parsed.entries);
      await this.writeLastGood(undefined, 0);
      return;
    }

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
    // Copy the bad file aside before anything replaces it; sessions.json is never missing.
    const keptAs = await keepCorruptCopy(path, clock);
    logger.error("registry file corrupt; loaded last good copy", {
      path,
      keptAs,
      lastGood: lastGoodPath,
      problem: parsed.problem,
    });
    this.fill(fallback.entries);
    this.version = 1;
    this.lastGoodVersion = 1;
    await this.flush();
  }

  private fill(entries: Map<ChatId, RegistryEntry>): void {
    for (const [chatId, entry] of entries) this.memory.load(chatId, entry);
    const duplicates = this.memory.duplicateNames();
    if (duplicates.length > 0) {
      this.logger.warn("registry duplicate session names", { path: this.path, names: duplicates });
    }
  }
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

/** Copies a corrupt file to `<path>.corrupt-<ISO time, ':' as '-'>`, never over another file. */
async function keepCorruptCopy(path: string, clock: Clock): Promise<string> {
  const stamp = new Date(clock.now()).toISOString().replaceAll(":", "-");
  let target = `${path}.corrupt-${stamp}`;
  for (let attempt = 2; await fileExists(target); attempt += 1) {
    target = `${path}.corrupt-${stamp}-${attempt}`;
  }
  await copyFileDurable(path, target);
  return target;
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
