import { pino, type Logger as PinoLogger } from "pino";

export type LogFields = Record<string, unknown>;

/**
 * The logger every module receives through its deps. Constant message, variables as fields:
 * `log.warn("session resume failed", { chatId, sessionId, cause })`.
 */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

function wrapPino(base: PinoLogger): Logger {
  const write =
    (level: "debug" | "info" | "warn" | "error") => (message: string, fields?: LogFields) =>
      base[level](serialiseErrors(fields ?? {}), message);
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
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? "info";
  if (options.pretty) {
    const transport = {
      target: "pino-pretty",
      options: { colorize: true, translateTime: "SYS:HH:MM:ss.l" },
    };
    return wrapPino(
      options.copyTo && level !== "silent"
        ? pino({ level }, copying(level, pino.transport(transport), options.copyTo))
        : pino({ level, transport }),
    );
  }
  const destination = options.destination ?? process.stdout;
  return wrapPino(
    pino(
      { level, timestamp: pino.stdTimeFunctions.isoTime },
      options.copyTo && level !== "silent"
        ? copying(level, destination, options.copyTo)
        : destination,
    ),
  );
}

/** Every line to `main` and to `copy` as well. */
function copying(
  level: string,
  main: pino.DestinationStream | NodeJS.WritableStream,
  copy: { write(line: string): void },
) {
  return pino.multistream([
    { level: level as pino.Level, stream: main },
    { level: level as pino.Level, stream: copy },
  ]);
}

export interface LogRecord {
  level: "debug" | "info" | "warn" | "error";
  message: string;
  fields: LogFields;
}

/** A logger that keeps every record in memory, for tests that assert on what was logged. */
export function createMemoryLogger(
  records: LogRecord[] = [],
  bound: LogFields = {},
): Logger & { records: LogRecord[] } {
  const write = (level: LogRecord["level"]) => (message: string, fields?: LogFields) => {
    records.push({ level, message, fields: { ...bound, ...fields } });
  };
  return {
    records,
    debug: write("debug"),
    info: write("info"),
    warn: write("warn"),
    error: write("error"),
    child: (fields) => createMemoryLogger(records, { ...bound, ...fields }),
  };
}
