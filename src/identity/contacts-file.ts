/**
 * The shape of `contacts.json`, strict so a misspelt key is an error rather than silently
 * ignored, and the wording of its errors: each names the JSON path a person can find in the
 * file (`contacts[2].handles[0]`), what was found there, and the fix.
 */
import { z } from "zod";

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

/** Checks parsed JSON against the file's shape, describing every mismatch. */
export function checkContactsFile(
  json: unknown,
): { ok: true; file: ContactsFile } | { ok: false; problems: string[] } {
  const parsed = fileSchema.safeParse(json);
  if (parsed.success) return { ok: true, file: parsed.data };
  return { ok: false, problems: parsed.error.issues.map((issue) => describeIssue(issue, json)) };
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
        `${allowedKeys(issue.path).join(", ")}.`
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

function allowedKeys(path: readonly PropertyKey[]): string[] {
  if (path[0] === "contacts") return Object.keys(contactSchema.shape);
  if (path[0] === "groups") return Object.keys(groupSchema.shape);
  return Object.keys(fileSchema.shape);
}

function describeType(expected: string): string {
  if (expected === "object") return "an object ({ ... })";
  if (expected === "array") return "a list ([ ... ])";
  return `a ${expected}`;
}

/** `["contacts", 2, "handles", 0]` -> `contacts[2].handles[0]`, as a person reads the file. */
function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "the top level";
  return path
    .map((part, index) =>
      typeof part === "number" ? `[${part}]` : `${index === 0 ? "" : "."}${String(part)}`,
    )
    .join("");
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const part of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

function showValue(value: unknown): string {
  const shown = JSON.stringify(value) ?? String(value);
  return shown.length > 60 ? `${shown.slice(0, 60)}...` : shown;
}
