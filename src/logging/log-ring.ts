/**
 * The daemon's recent log lines, kept in memory for the dashboard's Log view: a bounded ring fed
 * by the pino logger as an extra destination (`createLogger({ copyTo: ring.stream })`), so it
 * holds exactly what the daemon logs, and told to listeners as each line comes.
 *
 * Secrets never leave it: values named as secrets (the API token, Claude credentials) are
 * replaced by `[redacted]` wherever they appear, as are bearer tokens, Anthropic keys and fields
 * whose names say they hold one (`token`, `authorization`, `apiKey`, ...).
 */

export type LogLevelName = "trace" | "debug" | "info" | "warn" | "error" | "fatal";

export interface LogLine {
  /** Counts up from 1 across the daemon's run: a reader resumes after the last it saw. */
  seq: number;
  /** ISO time the line was logged. */
  time: string;
  level: LogLevelName;
  message: string;
  /** Everything else the line carried (child bindings included), secrets redacted. */
  fields: Record<string, unknown>;
}

export type LogListener = (line: LogLine) => void;

export interface LogRing {
  /** A pino destination: one JSON line per write. */
  readonly stream: { write(line: string): void };
  /** Values never to show, from now on and in the lines kept already. Short ones are ignored. */
  addSecrets(secrets: readonly (string | undefined)[]): void;
  /** The lines kept after `afterSeq` (all of them without it), oldest first. */
  recent(afterSeq?: number): LogLine[];
  /** `listener` gets each new line; returns a function that unsubscribes. */
  subscribe(listener: LogListener): () => void;
}

export interface LogRingOptions {
  /** Lines kept. Default 1000. */
  capacity?: number;
  /** Longer strings in a line's fields are cut to this many characters. Default 2000. */
  maxFieldLength?: number;
}

const LEVELS: Readonly<Record<number, LogLevelName>> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};
/** What pino adds to every line and the view shows otherwise (or not at all). */
const OWN_KEYS = new Set(["level", "time", "msg", "pid", "hostname"]);
/** Field names whose values are secrets, whatever they hold. */
const SECRET_KEY = /^(?:token|api[-_]?token|api[-_]?key|x-api-key|authorization|password|secret)$/i;
/** Secrets recognisable by their form: bearer credentials and Anthropic keys. */
const SECRET_PATTERNS: readonly RegExp[] = [
  /\b(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi,
  /\bsk-ant-[A-Za-z0-9_-]+/g,
];
/** Secrets shorter than this are not looked for: they would redact ordinary words. */
const MIN_SECRET_LENGTH = 8;
export const REDACTED = "[redacted]";

export function createLogRing(options: LogRingOptions = {}): LogRing {
  const capacity = options.capacity ?? 1000;
  const maxFieldLength = options.maxFieldLength ?? 2000;
  if (!Number.isInteger(capacity) || capacity <= 0) {
    throw new RangeError(`Expected \`capacity\` to be a positive integer, got \`${capacity}\``);
  }
  let lines: LogLine[] = [];
  let seq = 0;
  const secrets = new Set<string>();
  const listeners = new Set<LogListener>();

  const redactText = (text: string): string => {
    let result = text;
    for (const secret of secrets) result = result.split(secret).join(REDACTED);
    for (const pattern of SECRET_PATTERNS) {
      result = result.replace(pattern, (match, prefix: unknown) =>
        typeof prefix === "string" && match.startsWith(prefix) ? `${prefix}${REDACTED}` : REDACTED,
      );
    }
    return result;
  };
  const redact = (value: unknown, depth = 0): unknown => {
    if (typeof value === "string") {
      const text = value.length > maxFieldLength ? `${value.slice(0, maxFieldLength - 1)}…` : value;
      return redactText(text);
    }
    if (typeof value !== "object" || value === null || depth > 8) return value;
    if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        SECRET_KEY.test(key) ? REDACTED : redact(item, depth + 1),
      ]),
    );
  };

  const add = (record: Record<string, unknown>) => {
    const fields: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(record)) {
      if (!OWN_KEYS.has(key)) fields[key] = value;
    }
    seq += 1;
    const line: LogLine = {
      seq,
      time:
        typeof record.time === "string"
          ? record.time
          : new Date(typeof record.time === "number" ? record.time : Date.now()).toISOString(),
      level: LEVELS[typeof record.level === "number" ? record.level : 30] ?? "info",
      message: redactText(typeof record.msg === "string" ? record.msg : ""),
      fields: redact(fields) as Record<string, unknown>,
    };
    lines.push(line);
    if (lines.length > capacity) lines = lines.slice(-capacity);
    for (const listener of listeners) {
      try {
        listener(line);
      } catch {
        // A listener's failure is its own; the log goes on.
      }
    }
  };

  return {
    stream: {
      write(text) {
        for (const part of text.split("\n")) {
          if (part.trim() === "") continue;
          try {
            const record: unknown = JSON.parse(part);
            if (typeof record === "object" && record !== null && !Array.isArray(record)) {
              add(record as Record<string, unknown>);
            }
          } catch {
            add({ msg: part, level: 30 });
          }
        }
      },
    },

    addSecrets(values) {
      let added = false;
      for (const value of values) {
        if (value !== undefined && value.trim().length >= MIN_SECRET_LENGTH) {
          secrets.add(value.trim());
          added = true;
        }
      }
      if (!added) return;
      lines = lines.map((line) => ({
        ...line,
        message: redactText(line.message),
        fields: redact(line.fields) as Record<string, unknown>,
      }));
    },

    recent(afterSeq) {
      return afterSeq === undefined ? [...lines] : lines.filter((line) => line.seq > afterSeq);
    },

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
