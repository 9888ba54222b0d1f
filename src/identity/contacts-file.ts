/**
 * The shape of `contacts.json`, strict so a misspelt key is an error rather than silently
 * ignored, and the wording of its errors: each names the JSON path a person can find in the
 * file (`contacts[2].handles[0]`), what was found there, and the fix.
 */
import { z } from "zod";
import { formatKeyPath, knownKeysAt, valueAt } from "../utils/zod-issues.js";

const contactSchema = z.strictObject({
  name: z.string().trim().min(1),
  tier: z.string(),
  handles: z.array(z.string()).min(1),
});
const groupSchema = z.strictObject({
  chat_id: z.string(),
  name: z.string().trim().min(1),
  tier: z.string(),
});
const fileSchema = z.strictObject({
  contacts: z.array(contactSchema).default([]),
  groups: z.array(groupSchema).default([]),
});

export type ContactsFile = z.infer<typeof fileSchema>;
export type ContactEntry = z.infer<typeof contactSchema>;
export type GroupEntry = z.infer<typeof groupSchema>;

/** An entry that has the right shape, with its index in the file (for the paths in messages). */
export interface WellFormed<Entry> {
  index: number;
  entry: Entry;
}

export interface CheckedContactsFile {
  /** One sentence per mismatch anywhere in the file; empty when the shape is right. */
  problems: string[];
  /** The entries that have the right shape, even when others do not, so they can be checked too. */
  contacts: WellFormed<ContactEntry>[];
  groups: WellFormed<GroupEntry>[];
}

/** The top level alone; each entry is checked by itself below. */
const topLevelSchema = z.strictObject({
  contacts: z.array(z.unknown()).default([]),
  groups: z.array(z.unknown()).default([]),
});

/**
 * Checks parsed JSON against the file's shape, describing every mismatch. Entries are checked one
 * by one, so the well-formed ones come back too and the caller can report their problems (an
 * unknown tier, a handle that does not normalise) in the same list as the malformed ones.
 */
export function checkContactsFile(json: unknown): CheckedContactsFile {
  const checked: CheckedContactsFile = { problems: [], contacts: [], groups: [] };
  const topLevel = topLevelSchema.safeParse(json);
  if (!topLevel.success) {
    checked.problems.push(...topLevel.error.issues.map((issue) => describeIssue(issue, json)));
  }
  const lists = (typeof json === "object" && json !== null ? json : {}) as Record<string, unknown>;
  const checkEach = <Entry>(key: "contacts" | "groups", schema: z.ZodType<Entry>) => {
    const list = lists[key];
    if (!Array.isArray(list)) return [];
    const wellFormed: WellFormed<Entry>[] = [];
    list.forEach((item: unknown, index) => {
      const parsed = schema.safeParse(item);
      if (parsed.success) wellFormed.push({ index, entry: parsed.data });
      else
        checked.problems.push(
          ...parsed.error.issues.map((issue) =>
            describeIssue({ ...issue, path: [key, index, ...issue.path] }, json),
          ),
        );
    });
    return wellFormed;
  };
  checked.contacts = checkEach("contacts", contactSchema);
  checked.groups = checkEach("groups", groupSchema);
  return checked;
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  const path = formatPath(issue.path);
  const found = valueAt(input, issue.path);
  switch (issue.code) {
    case "unrecognized_keys":
      return (
        `${path}: unknown key${issue.keys.length > 1 ? "s" : ""} ` +
        `${issue.keys.map((key) => JSON.stringify(key)).join(", ")}. Remove ` +
        `${issue.keys.length > 1 ? "them" : "it"} or fix the spelling; allowed keys are ` +
        `${knownKeysAt(fileSchema, issue.path).join(", ")}.`
      );
    case "invalid_type":
      return found === undefined
        ? `${path}: missing. Add it as ${describeType(issue.expected)}.`
        : `${path}: expected ${describeType(issue.expected)}, found ${showValue(found)}. ` +
            (issue.expected === "string" && typeof found === "number"
              ? `Put it in quotes: "${found}".`
              : `Replace it with ${describeType(issue.expected)}.`);
    case "too_small":
      return issue.origin === "array"
        ? `${path}: empty. List at least one handle, or remove the contact.`
        : `${path}: expected a non-empty string, found ${showValue(found)}.`;
    default:
      return `${path}: ${issue.message}, found ${showValue(found)}.`;
  }
}

function describeType(expected: string): string {
  if (expected === "object") return "an object ({ ... })";
  if (expected === "array") return "a list ([ ... ])";
  return `a ${expected}`;
}

/** `["contacts", 2, "handles", 0]` -> `contacts[2].handles[0]`, as a person reads the file. */
function formatPath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? "the top level" : formatKeyPath(path);
}

function showValue(value: unknown): string {
  const shown = JSON.stringify(value) ?? String(value);
  return shown.length > 60 ? `${shown.slice(0, 60)}...` : shown;
}
