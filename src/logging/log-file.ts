/**
 * The daemon's log file, `state/logs/dispatch.log`, capped in size: when a line would take it
 * past `maxBytes`, it becomes `dispatch.log.1` (the older ones move up to `.2` ... `.<keep>`, the
 * oldest is dropped) and a new file is started. The name being written never changes, so
 * `tail -F` and `dispatch logs --follow` keep up. Lines are written synchronously: a daemon killed
 * with SIGKILL loses none it logged.
 */
import { existsSync, renameSync, rmSync, statSync } from "node:fs";
import { pino } from "pino";

export interface LogFileOptions {
  /** `~/dispatch/state/logs/dispatch.log` */
  path: string;
  /** Largest size of one file. */
  maxBytes: number;
  /** How many rotated files are kept besides the current one. */
  keep: number;
}

/** 10 MB a file, the current one and three before it: at most 40 MB. */
export const LOG_FILE_LIMITS = { maxBytes: 10 * 1024 * 1024, keep: 3 } as const;

export interface LogFileStream {
  write(line: string): void;
}

/** `dispatch.log.2` */
export function rotatedLogFile(file: string, generation: number): string {
  return `${file}.${generation}`;
}

/** The rotated files that exist, oldest first, then the current one: the log in time order. */
export function logFilesInOrder(file: string, keep: number = LOG_FILE_LIMITS.keep): string[] {
  const older = Array.from({ length: keep }, (_, index) => rotatedLogFile(file, keep - index));
  return [...older, file].filter((candidate) => existsSync(candidate));
}

export function openLogFile(options: LogFileOptions): LogFileStream {
  const destination = pino.destination({
    dest: options.path,
    sync: true,
    mkdir: true,
    // Logs name chats and contacts: only the user may read them.
    mode: 0o600,
  });
  let size = sizeOf(options.path);

  function rotate(): void {
    rmSync(rotatedLogFile(options.path, options.keep), { force: true });
    for (let generation = options.keep - 1; generation >= 1; generation -= 1) {
      const from = rotatedLogFile(options.path, generation);
      if (existsSync(from)) renameSync(from, rotatedLogFile(options.path, generation + 1));
    }
    if (options.keep > 0) renameSync(options.path, rotatedLogFile(options.path, 1));
    else rmSync(options.path, { force: true });
    destination.reopen();
    size = 0;
  }

  return {
    write(line) {
      const bytes = Buffer.byteLength(line);
      if (size > 0 && size + bytes > options.maxBytes) {
        try {
          rotate();
        } catch {
          // A file that cannot be moved (a full disk, a permission) is written on past its cap
          // rather than losing the line or stopping the daemon.
        }
      }
      destination.write(line);
      size += bytes;
    },
  };
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
