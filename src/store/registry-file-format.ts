/**
 * The `sessions.json` format, pure: parsing (validated, unknown keys kept) and formatting (pretty
 * JSON, chat ids sorted, known keys in a fixed order, trailing newline). Reading the file lives in
 * `registry-file-import.ts`, writing it in `registry-export.ts` (through the incremental
 * `registry-file-image.ts`). A registry row stores one entry in this format too.
 */
import { z } from "zod";
import { describeError } from "../utils/errors.js";
import type { ChatId } from "../utils/ids.js";
import { sessionNameProblem, type RegistryEntry } from "./registry.js";

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

/**
 * The order keys are written in: the seed's fields first, then ours, then unknown ones. The
 * dashboard shows an entry in the same order (`/v1/dashboard/about` hands it this list).
 */
export const REGISTRY_FIELDS = [
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
const KNOWN = new Set<string>(REGISTRY_FIELDS);

export type ParseResult =
  | { ok: true; entries: Map<ChatId, RegistryEntry> }
  | { ok: false; problem: string; cause?: unknown };

/**
 * Parses and validates the file's text. The entries are new objects the caller may take over
 * (the registry freezes them where they are rather than copying them).
 */
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
    const parsed = parseRegistryEntry(key, value);
    if (!parsed.ok) return parsed;
    entries.set(key as ChatId, parsed.entry);
  }
  return { ok: true, entries };
}

export type EntryParseResult =
  { ok: true; entry: RegistryEntry } | { ok: false; problem: string; cause?: unknown };

/**
 * Validates one chat's entry, as the file holds it and as a registry row stores it (unknown keys
 * kept, missing counters and kinds completed). The entry is a new object the caller may take over.
 */
export function parseRegistryEntry(key: string, value: unknown): EntryParseResult {
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
  // zod's output is a fresh object: completed in place, not copied once more.
  const entry = result.data;
  entry.chat_kind ??= guessChatKind(key);
  return { ok: true, entry: entry as unknown as RegistryEntry };
}

/** Seed entries have no chat_kind: phone numbers and emails are people, anything else a group. */
function guessChatKind(chatId: string): "individual" | "group" {
  return chatId.startsWith("+") || chatId.includes("@") ? "individual" : "group";
}

/** Chat ids in file order: by UTF-16 code units, as `Array.prototype.sort` compares strings. */
export function compareChatIds(left: string, right: string): number {
  return left < right ? -1 : left > right ? 1 : 0;
}

/** The whole file at once (the incremental `RegistryFileImage` writes the same bytes). */
export function serialiseRegistry(entries: Iterable<[ChatId, RegistryEntry]>): string {
  const sorted = [...entries].sort(([left], [right]) => compareChatIds(left, right));
  if (sorted.length === 0) return EMPTY_FILE;
  return `{\n${sorted.map(([chatId, entry]) => entryLine(chatId, entry)).join(",\n")}\n}\n`;
}

export const EMPTY_FILE = "{}\n";

/**
 * One chat's part of the file: `  "<chat id>": { ... }`, indented by two, without the comma that
 * separates it from the next. Built by hand around the entry: an object would put integer-like
 * chat ids first, whatever the sort said.
 */
export function entryLine(chatId: ChatId, entry: RegistryEntry): string {
  const record = entry as unknown as Record<string, unknown>;
  // fromEntries defines own properties, so even an unknown "__proto__" key is written as data.
  const ordered = Object.fromEntries([
    ...REGISTRY_FIELDS.filter((key) => key in record).map((key): [string, unknown] => [
      key,
      record[key],
    ]),
    ...Object.keys(record)
      .filter((key) => !KNOWN.has(key))
      .map((key): [string, unknown] => [key, record[key]]),
  ]);
  return `  ${JSON.stringify(chatId)}: ${JSON.stringify(ordered, null, 2).replaceAll("\n", "\n  ")}`;
}
