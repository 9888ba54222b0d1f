/**
 * The registry as a JSON file (`~/dispatch/state/sessions.json`): loaded and validated once,
 * held in memory, written back atomically and durably, coalescing bursts of changes into one
 * write. A file that does not parse is never taken for an empty registry: the last good copy
 * (`sessions.json.last-good`) is loaded instead, or opening fails.
 */
import { access, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { z } from "zod";
import { systemClock, type Clock } from "../core/clock.js";
import { DispatchError, describeError } from "../core/errors.js";
import type { ChatId } from "../core/ids.js";
import type { Logger } from "../logging/logger.js";
import {
  errorCode,
  readFileIfExists,
  removeStaleTempFiles,
  copyFileDurable,
  writeFileDurable,
} from "./durable-file.js";
import { MemoryRegistry } from "./memory-registry.js";
import { sessionNameProblem, type Registry, type RegistryEntry } from "./registry.js";

export interface JsonFileRegistryOptions {
  path: string;
  logger: Logger;
  /** How long a change waits for others to join its write. Default 25. */
  flushDelayMs?: number;
  /** Dates the names of corrupt files moved aside. */
  clock?: Clock;
  /** Replaces the durable write, for tests that count or fail writes. */
  writeFile?: (path: string, data: string) => Promise<void>;
}

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
  private readonly logger: Logger;
  private readonly flushDelayMs: number;
  private readonly writeFile: (path: string, data: string) => Promise<void>;
  /** Bumped by every change; a write records the version it captured. */
  private version = 0;
  private durableVersion = 0;
  /** The version the last good copy holds; 0 is what was loaded (or nothing, for no file). */
  private lastGoodVersion = 0;
  private inFlight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private consecutiveFailures = 0;
  private closing: Promise<void> | undefined;

  private constructor(options: JsonFileRegistryOptions) {
    this.path = options.path;
    this.lastGoodPath = `${options.path}.last-good`;
    this.logger = options.logger;
    this.flushDelayMs = options.flushDelayMs ?? 25;
    if (!Number.isFinite(this.flushDelayMs) || this.flushDelayMs < 0) {
      throw new DispatchError(
        "invalid_option",
        `Expected \`flushDelayMs\` to be a non-negative number, got \`${options.flushDelayMs}\``,
      );
    }
    this.writeFile = options.writeFile ?? ((path, data) => writeFileDurable(path, data));
    this.memory = new MemoryRegistry({ onChange: () => this.markDirty() });
  }

  static async open(options: JsonFileRegistryOptions): Promise<JsonFileRegistry> {
    const registry = new JsonFileRegistry(options);
    await registry.load(options.clock ?? systemClock);
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
  takenNames(): ReadonlySet<string> {
    return this.memory.takenNames();
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
        await this.writeLastGood(serialiseRegistry(this.memory.entries()), this.durableVersion);
      }
    })().catch((error: unknown) => {
      this.closing = undefined; // a later close() tries the write again
      throw error;
    });
    return this.closing;
  }

  private markDirty(): void {
    this.version += 1;
    if (this.timer === undefined) this.schedule(this.flushDelayMs, false);
  }

  private schedule(delayMs: number, retry: boolean): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // Failures are logged (and retried) by the write itself; nothing else to do here.
      this.flush().catch(() => undefined);
    }, delayMs);
    // A pending change keeps the process alive until written; a retry loop should not.
    if (retry) this.timer.unref();
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
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
    const text = serialiseRegistry(this.memory.entries());
    const started = performance.now();
    try {
      await this.writeFile(this.path, text);
    } catch (error) {
      this.stats.failedWrites += 1;
      this.consecutiveFailures += 1;
      const code = errorCode(error);
      this.logger.error("registry write failed", { path: this.path, code, cause: error });
      if (this.timer === undefined && this.closing === undefined) {
        const delayMs = Math.min(
          this.flushDelayMs * 2 ** this.consecutiveFailures,
          MAX_RETRY_DELAY_MS,
        );
        this.schedule(Math.max(delayMs, 100), true);
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

  /** The copy is a safety net: failing to write it is logged, not fatal. */
  private async writeLastGood(text: string, version: number): Promise<void> {
    try {
      await this.writeFile(this.lastGoodPath, text);
      this.lastGoodVersion = version;
    } catch (error) {
      this.logger.error("registry last-good write failed", {
        path: this.lastGoodPath,
        code: errorCode(error),
        cause: error,
      });
    }
  }

  private async load(clock: Clock): Promise<void> {
    const { path, lastGoodPath, logger } = this;
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const removed = [
      ...(await removeStaleTempFiles(path)),
      ...(await removeStaleTempFiles(lastGoodPath)),
    ];
    if (removed.length > 0) logger.info("registry temp-file remove", { files: removed });

    const text = await readOrThrow(path);
    if (text === undefined) {
      if (await exists(lastGoodPath)) {
        logger.warn("registry file missing; starting empty", { path, lastGood: lastGoodPath });
      }
      return;
    }
    const parsed = parseRegistryText(text);
    if (parsed.ok) {
      this.fill(parsed.entries);
      await this.writeLastGood(text, 0);
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

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Copies a corrupt file to `<path>.corrupt-<ISO time, ':' as '-'>`, never over another file. */
async function keepCorruptCopy(path: string, clock: Clock): Promise<string> {
  const stamp = new Date(clock.now()).toISOString().replaceAll(":", "-");
  let target = `${path}.corrupt-${stamp}`;
  for (let attempt = 2; await exists(target); attempt += 1) {
    target = `${path}.corrupt-${stamp}-${attempt}`;
  }
  await copyFileDurable(path, target);
  return target;
}

// ---- The file format: pure parsing and serialising -------------------------------------------

const isoDateTime = z
  .string()
  .refine((value) => !Number.isNaN(Date.parse(value)), "expected an ISO 8601 date-time");
const count = z.number().int().nonnegative().default(0);

/** Known keys are checked; unknown ones are kept, so a newer dispatch's fields survive. */
const entrySchema = z.looseObject({
  session_name: z.string(),
  contact_name: z.string().nullable().default(null),
  tier: z.string().min(1),
  session_id: z
    .string()
    .nullable()
    .default(null)
    .transform((value) => (value === "" ? null : value)),
  created_at: isoDateTime,
  last_message_time: isoDateTime.nullable().default(null),
  chat_kind: z.enum(["individual", "group"]).optional(),
  channel: z.string().nullable().default(null),
  previous_session_ids: z
    .array(
      z.looseObject({
        session_id: z.string().min(1),
        replaced_at: isoDateTime,
        reason: z.string(),
      }),
    )
    .default([]),
  turns: count,
  errors: count,
  restarts: count,
});

/** The order keys are written in: the seed's fields first, then ours, then unknown ones. */
const KNOWN_KEYS = [
  "session_name",
  "contact_name",
  "tier",
  "session_id",
  "created_at",
  "last_message_time",
  "chat_kind",
  "channel",
  "previous_session_ids",
  "turns",
  "errors",
  "restarts",
] as const satisfies readonly (keyof RegistryEntry)[];
const KNOWN = new Set<string>(KNOWN_KEYS);

export type ParseResult =
  | { ok: true; entries: Map<ChatId, RegistryEntry> }
  | { ok: false; problem: string; cause?: unknown };

export function parseRegistryText(text: string): ParseResult {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    return { ok: false, problem: `it is not valid JSON (${describeError(error)})`, cause: error };
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return { ok: false, problem: "it is not a JSON object keyed by chat id" };
  }
  const entries = new Map<ChatId, RegistryEntry>();
  for (const [key, value] of Object.entries(data)) {
    if (key.length === 0) return { ok: false, problem: "it has an entry with an empty chat id" };
    const result = entrySchema.safeParse(value);
    if (!result.success) {
      const details = result.error.issues
        .slice(0, 3)
        .map((issue) => `${issue.path.join(".") || "(entry)"}: ${issue.message}`)
        .join("; ");
      return { ok: false, problem: `chat ${JSON.stringify(key)}: ${details}`, cause: result.error };
    }
    const nameProblem = sessionNameProblem(result.data.session_name);
    if (nameProblem !== undefined) {
      return {
        ok: false,
        problem: `chat ${JSON.stringify(key)}: session_name ${JSON.stringify(result.data.session_name)} ${nameProblem} (it would become a folder path)`,
      };
    }
    const entry = { ...result.data, chat_kind: result.data.chat_kind ?? guessChatKind(key) };
    entries.set(key as ChatId, entry as unknown as RegistryEntry);
  }
  return { ok: true, entries };
}

/** Seed entries have no chat_kind: phone numbers and emails are people, anything else a group. */
function guessChatKind(chatId: string): "individual" | "group" {
  return chatId.startsWith("+") || chatId.includes("@") ? "individual" : "group";
}

/** Pretty JSON, chat ids sorted, known keys in a fixed order, trailing newline. */
export function serialiseRegistry(entries: Iterable<[ChatId, RegistryEntry]>): string {
  const sorted = [...entries].sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0));
  if (sorted.length === 0) return "{}\n";
  // Built by hand: an object would put integer-like chat ids first, whatever the sort said.
  const lines = sorted.map(([chatId, entry]) => `  ${JSON.stringify(chatId)}: ${entryText(entry)}`);
  return `{\n${lines.join(",\n")}\n}\n`;
}

/**
 * Each entry's indented JSON, kept while the (frozen, so unchanging) entry lives: a write after
 * a burst of updates formats only the entries that changed, not all ten thousand.
 */
const entryTexts = new WeakMap<RegistryEntry, string>();

function entryText(entry: RegistryEntry): string {
  const cached = entryTexts.get(entry);
  if (cached !== undefined) return cached;
  const record = entry as unknown as Record<string, unknown>;
  const ordered: Record<string, unknown> = Object.fromEntries([
    ...KNOWN_KEYS.filter((key) => key in record).map((key): [string, unknown] => [
      key,
      record[key],
    ]),
    ...Object.keys(record)
      .filter((key) => !KNOWN.has(key))
      .map((key): [string, unknown] => [key, record[key]]),
  ]);
  const text = JSON.stringify(ordered, null, 2).replaceAll("\n", "\n  ");
  if (Object.isFrozen(entry)) entryTexts.set(entry, text);
  return text;
}
