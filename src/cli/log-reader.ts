/**
 * Reading the daemon's log file for `dispatch logs`: the last lines across the current file and
 * the rotated ones before it, and following it as it grows, also across a rotation (the file is
 * renamed to `.1` and a new one started: what was written to the old one is read to its end
 * first, then the new one from its start).
 */
import { open, readFile, stat, type FileHandle } from "node:fs/promises";
import { StringDecoder } from "node:string_decoder";
import { logFilesInOrder } from "../logging/log-file.js";

/** The last `count` lines of the log, oldest first, reading rotated files only when needed. */
export async function readLastLines(file: string, count: number): Promise<string[]> {
  const files = logFilesInOrder(file);
  const lines: string[] = [];
  for (const candidate of files.reverse()) {
    if (lines.length >= count) break;
    const text = await readFile(candidate, "utf8").catch(() => "");
    lines.unshift(...splitLines(text));
  }
  return lines.slice(Math.max(0, lines.length - count));
}

function splitLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

export interface FollowOptions {
  /** Start here in the current file (its size when the last lines were read). */
  fromOffset: number;
  onLines: (lines: string[]) => void;
  /** Ends the follow. */
  stopped: Promise<void>;
  /** How often the file is checked; `tail -F` checks once a second. Default 200 ms. */
  pollMs?: number;
}

/** Follows the log until `stopped` settles. */
export async function followLog(file: string, options: FollowOptions): Promise<void> {
  const pollMs = options.pollMs ?? 200;
  let running = true;
  void options.stopped.then(() => {
    running = false;
  });
  let reader = await openReader(file, options.fromOffset);
  let wake: () => void = () => undefined;
  void options.stopped.then(() => wake());
  try {
    while (running) {
      if (reader) {
        options.onLines(await reader.readNew());
        const current = await stat(file).catch(() => undefined);
        // Renamed away (rotated) or replaced: finish the old file, then start on the new one.
        if (current === undefined || current.ino !== reader.ino || current.size < reader.offset) {
          options.onLines(await reader.readNew(true));
          await reader.close();
          reader = await openReader(file, 0);
          continue;
        }
      } else {
        reader = await openReader(file, 0);
        if (reader) continue;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, pollMs);
      });
    }
  } finally {
    await reader?.close();
  }
}

interface Reader {
  readonly ino: number;
  readonly offset: number;
  /** Complete lines written since the last call; with `final`, a last partial line too. */
  readNew(final?: boolean): Promise<string[]>;
  close(): Promise<void>;
}

async function openReader(file: string, fromOffset: number): Promise<Reader | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(file, "r");
  } catch {
    return undefined;
  }
  const { ino, size } = await handle.stat();
  let offset = Math.min(fromOffset, size);
  let partial = "";
  // A character split between two reads is kept until its last byte has come.
  const decoder = new StringDecoder("utf8");
  return {
    ino,
    get offset() {
      return offset;
    },
    async readNew(final = false) {
      const lines: string[] = [];
      for (;;) {
        const buffer = Buffer.alloc(64 * 1024);
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset);
        if (bytesRead === 0) break;
        offset += bytesRead;
        const text = partial + decoder.write(buffer.subarray(0, bytesRead));
        const complete = text.split("\n");
        partial = complete.pop() ?? "";
        lines.push(...complete);
      }
      if (final && partial !== "") {
        lines.push(partial);
        partial = "";
      }
      return lines;
    },
    close: () => handle.close(),
  };
}
