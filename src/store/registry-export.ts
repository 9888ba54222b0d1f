/**
 * `~/dispatch/state/sessions.json` as an export of the registry rows, for people and tools that
 * read it: the seed's format (`registry-file-format.ts`), written whole, atomically and durably
 * (`durable-file.ts`), at most once per `delayMs` however many chats change meanwhile. Each write
 * formats only the entries that changed since the last (`registry-file-image.ts`). Nothing reads
 * it back but the first start's import (`registry-file-import.ts`). A failed write is logged and
 * tried again; it never fails a change of the registry, whose rows are what counts.
 */
import { systemClock, type Clock } from "../utils/clock.js";
import { describeError } from "../utils/errors.js";
import type { ChatId } from "../utils/ids.js";
import type { Logger } from "../logging/logger.js";
import { errorCode, readFileIfExists, writeFileDurable } from "./durable-file.js";
import { RegistryFileImage, type RegistryEntrySource } from "./registry-file-image.js";

/**
 * Ten seconds: the export is for reading, so it may trail the rows; a busy daemon at 10,000
 * chats (3.5 MB) then writes it six times a minute at most.
 */
export const DEFAULT_EXPORT_DELAY_MS = 10_000;

export interface RegistryExportOptions {
  path: string;
  source: RegistryEntrySource;
  logger: Logger;
  clock?: Clock;
  delayMs?: number;
  /** Replaces the durable write, for tests. A Buffer `data` is reused by the next write. */
  writeFile?: (path: string, data: string | Buffer) => Promise<void>;
}

export interface RegistryExportStats {
  writes: number;
  failedWrites: number;
  lastWriteMs: number;
}

export class RegistryExport {
  readonly path: string;
  readonly stats: RegistryExportStats = { writes: 0, failedWrites: 0, lastWriteMs: 0 };
  private readonly image: RegistryFileImage;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly delayMs: number;
  private readonly writeFile: (path: string, data: string | Buffer) => Promise<void>;
  private version = 0;
  private writtenVersion = -1;
  private timer: (() => void) | undefined;
  private writing: Promise<void> | undefined;
  private closed = false;

  constructor(options: RegistryExportOptions) {
    this.path = options.path;
    this.image = new RegistryFileImage(options.source);
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.delayMs = options.delayMs ?? DEFAULT_EXPORT_DELAY_MS;
    this.writeFile = options.writeFile ?? ((path, data) => writeFileDurable(path, data));
  }

  /** The chat's entry was added, changed or removed: the file follows within `delayMs`. */
  changed(chatId: ChatId): void {
    this.image.changed(chatId);
    this.version += 1;
    this.schedule();
  }

  /** Writes the file now if it is behind (or was never written by this process). */
  async write(): Promise<void> {
    this.cancel();
    while (this.writtenVersion < this.version) {
      if (this.writing !== undefined) {
        await this.writing;
        continue;
      }
      const attempt = this.writeOnce();
      this.writing = attempt.then(() => {
        this.writing = undefined;
      });
      if (!(await attempt)) return; // logged; the timer tries again
    }
  }

  /** Writes what is pending and stops the timer; later changes are not exported. */
  async close(): Promise<void> {
    await this.write();
    this.closed = true;
    this.cancel();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = this.clock.after(this.delayMs, () => {
      this.timer = undefined;
      void this.write();
    });
  }

  private cancel(): void {
    this.timer?.();
    this.timer = undefined;
  }

  /** One attempt; a failure is logged and the write scheduled again. */
  private async writeOnce(): Promise<boolean> {
    const version = this.version;
    const started = performance.now();
    try {
      await this.writeFile(this.path, this.image.render());
    } catch (error) {
      this.stats.failedWrites += 1;
      this.logger.error("registry-export-failed", {
        path: this.path,
        code: errorCode(error),
        cause: describeError(error),
        fix: "free disk space or fix the folder's permissions; the registry itself is unaffected",
      });
      this.schedule();
      return false;
    }
    this.stats.writes += 1;
    this.stats.lastWriteMs = performance.now() - started;
    this.writtenVersion = version;
    return true;
  }
}

/**
 * `sessions.json.source`: the database the export beside it was written from (its rows'
 * location, no password). A start that finds its own database named there knows the file is its
 * export, however far it trails the rows (a `kill -9` within its window), and checks nothing.
 */
export function exportSourcePath(path: string): string {
  return `${path}.source`;
}

export async function readExportSource(path: string): Promise<string | undefined> {
  return (await readFileIfExists(exportSourcePath(path)).catch(() => undefined))?.trim();
}

export async function recordExportSource(path: string, location: string): Promise<void> {
  await writeFileDurable(exportSourcePath(path), `${location}\n`);
}
