import type { LogFields, Logger } from "../../src/logging/logger.js";

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
