import { pino, type Logger as PinoLogger } from "pino";
import pinoPretty from "pino-pretty";
import { openLogFile, type LogFileOptions } from "./log-file.js";

export type LogFields = Record<string, unknown>;

/**
 * The logger every module receives through its deps. Constant message, variables as fields:
 * `log.warn("session-resume-failed", { chatId, sessionId, cause })`.
 */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

function wrapPino(base: PinoLogger): Logger {
  // A line below the logger's level costs nothing more than the call: its fields are not copied.
  const write =
    (level: "debug" | "info" | "warn" | "error") => (message: string, fields?: LogFields) => {
      if (base.isLevelEnabled(level)) base[level](serialiseErrors(fields ?? {}), message);
    };
  return {
    debug: write("debug"),
    info: write("info"),
    warn: write("warn"),
    error: write("error"),
    child: (fields) => wrapPino(base.child(fields)),
  };
}

/** Errors as fields lose their message in JSON; keep message and code. */
function serialiseErrors(fields: LogFields): LogFields {
  let hasError = false;
  for (const key in fields) if (fields[key] instanceof Error) hasError = true;
  if (!hasError) return fields;
  const result: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    result[key] =
      value instanceof Error
        ? { message: value.message, code: (value as { code?: unknown }).code, name: value.name }
        : value;
  }
  return result;
}

export interface LoggerOptions {
  level?: string;
  /** Human-readable lines (for a terminal) instead of JSON lines. */
  pretty?: boolean;
  destination?: NodeJS.WritableStream;
  /** Also gets every line as JSON (the dashboard's Log view, `log-ring.ts`). */
  copyTo?: { write(line: string): void };
  /** Also write JSON lines to this size-capped file (`dispatch logs` reads it). */
  file?: LogFileOptions;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  const output: pino.DestinationStream = options.pretty
    ? // In this process, not as a transport: no worker thread for a terminal's lines.
      pinoPretty({ colorize: true, translateTime: "SYS:HH:MM:ss.l", sync: true })
    : (options.destination ?? process.stdout);
  const settings = { level, timestamp: pino.stdTimeFunctions.isoTime };
  // JSON lines also go to the log file (`dispatch logs`) and the dashboard's Log view.
  const copies: pino.DestinationStream[] = [];
  if (options.file) copies.push(openLogFile(options.file));
  if (options.copyTo) copies.push(options.copyTo);
  if (copies.length === 0 || level === "silent") return wrapPino(pino(settings, output));
  return wrapPino(
    pino(
      settings,
      pino.multistream(
        [output, ...copies].map((stream) => ({ level: level as pino.Level, stream })),
      ),
    ),
  );
}
