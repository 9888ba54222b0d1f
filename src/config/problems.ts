/**
 * Turns zod issues into sentences a person can act on, in p-queue's style: the key path, the
 * expectation and the value found, plus a fix where one is likely:
 *   Expected `idleTimeoutSeconds` to be a positive integer, got `-5`
 *   Unknown key `idleTimeout` in config.json; did you mean `idleTimeoutSeconds`?
 * Pure: no I/O, no zod schema of its own.
 */
import type { z } from "zod";
import { formatKeyPath, knownKeysAt, valueAt } from "../utils/zod-issues.js";

type Issue = z.core.$ZodIssue;

export interface DescribeIssuesOptions {
  /** The schema that produced the issues, to list the keys known where an unknown one is found. */
  schema: z.ZodType;
  /** How the source is named in messages: `config.json`. */
  sourceName: string;
}

/** One sentence per problem, every issue included. */
export function describeIssues(
  issues: readonly Issue[],
  input: unknown,
  options: DescribeIssuesOptions,
): string[] {
  return issues.flatMap((issue) => describeIssue(issue, input, options));
}

function describeIssue(issue: Issue, input: unknown, options: DescribeIssuesOptions): string[] {
  const path = issue.path;
  if (issue.code === "unrecognized_keys") {
    const known = knownKeysAt(options.schema, path);
    return issue.keys.map((key) => describeUnknownKey([...path, key], known, options.sourceName));
  }
  if (issue.code === "custom" && issue.params?.["complete"] === true) return [issue.message];
  if (issue.code === "invalid_key") {
    const key = path.at(-1);
    const expectation = issue.issues[0]?.message ?? issue.message;
    return [
      `Expected the key ${formatValue(key)} in \`${formatKeyPath(path.slice(0, -1))}\` to be ` +
        `${expectation}`,
    ];
  }
  const value = valueAt(input, path);
  const subject = path.length === 0 ? options.sourceName : `\`${formatKeyPath(path)}\``;
  // Every leaf in schema.ts gives its expectation as the message; zod's own wording starts
  // with "Invalid" and is kept as it is should a leaf ever lack one.
  const sentence = issue.message.startsWith("Invalid")
    ? `Invalid ${subject}: ${issue.message}, got \`${formatValue(value)}\``
    : `Expected ${subject} to ${path.length === 0 ? "contain" : "be"} ${issue.message}, ` +
      `got \`${formatValue(value)}\``;
  return [sentence + hintFor(issue, path, value)];
}

function describeUnknownKey(
  path: readonly PropertyKey[],
  known: readonly string[],
  sourceName: string,
): string {
  const key = String(path.at(-1));
  const parent = path.slice(0, -1);
  const head = `Unknown key \`${formatKeyPath(path)}\` in ${sourceName}`;
  const suggestions = suggest(key, known);
  if (suggestions.length > 0) {
    const named = suggestions.map((name) => `\`${formatKeyPath([...parent, name])}\``);
    return `${head}; did you mean ${named.join(" or ")}?`;
  }
  if (known.length === 0) return `${head}; remove it`;
  return `${head}; the keys allowed here are ${known.map((name) => `\`${name}\``).join(", ")}`;
}

/** A fix for the likely mistakes: a forbidden mode, a quoted number, a near-miss of a choice. */
function hintFor(issue: Issue, path: readonly PropertyKey[], value: unknown): string {
  if (path.at(-1) === "permissionMode" && value === "bypassPermissions") {
    return (
      '. "bypassPermissions" is not allowed: the Claude Agent SDK refuses it when dispatch runs ' +
      'as root, and it would let an agent ignore its tier\'s tool limits. Use "dontAsk" with ' +
      "an `allowedTools` list of the tools the tier may use instead"
    );
  }
  if (issue.code === "invalid_value" && typeof value === "string") {
    const choices = issue.values.map(String);
    const close = suggest(value, choices);
    if (close.length > 0) return `; did you mean ${close.map((c) => `\`"${c}"\``).join(" or ")}?`;
  }
  if (issue.code === "invalid_type" && typeof value === "string") {
    if (
      (issue.expected === "number" || issue.expected === "int") &&
      value.trim() !== "" &&
      Number.isFinite(Number(value))
    ) {
      return `; write the number without quotes: ${value.trim()}`;
    }
    if (issue.expected === "array") return `; write it as an array: ${JSON.stringify([value])}`;
  }
  return "";
}

/**
 * The candidates closest to `word` (case, `-` and `_` ignored): within a small edit distance, or
 * containing it (`idleTimeout` -> `idleTimeoutSeconds`). Ties are all returned, at most three.
 */
export function suggest(word: string, candidates: readonly string[]): string[] {
  const target = normalise(word);
  if (target === "") return [];
  const scored = candidates
    .map((candidate) => {
      const normal = normalise(candidate);
      const distance = editDistance(target, normal);
      const allowed =
        Math.max(target.length, normal.length) <= 3 ? 1 : Math.max(2, target.length / 3);
      const contains =
        Math.min(target.length, normal.length) >= 4 &&
        (normal.includes(target) || target.includes(normal));
      return { candidate, distance, close: distance <= allowed || contains };
    })
    .filter((entry) => entry.close);
  const best = Math.min(...scored.map((entry) => entry.distance));
  return scored
    .filter((entry) => entry.distance === best)
    .slice(0, 3)
    .map((entry) => entry.candidate);
}

const normalise = (word: string): string => word.toLowerCase().replace(/[-_\s]/g, "");

/** Optimal string alignment distance: Levenshtein plus swapping two neighbours. */
export function editDistance(left: string, right: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= left.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= right.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const above = rows[i - 1] ?? [];
      const cost = left[i - 1] === right[j - 1] ? 0 : 1;
      let best = Math.min((above[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (above[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && left[i - 1] === right[j - 2] && left[i - 2] === right[j - 1]) {
        best = Math.min(best, (rows[i - 2]?.[j - 2] ?? 0) + 1);
      }
      row.push(best);
    }
    rows.push(row);
  }
  return rows[left.length]?.[right.length] ?? 0;
}

const MAX_VALUE_LENGTH = 60;

/** The value as JSON (so `"5"` and `5` differ), shortened. */
export function formatValue(value: unknown): string {
  const text = value === undefined ? "undefined" : (JSON.stringify(value) ?? typeof value);
  return text.length > MAX_VALUE_LENGTH ? `${text.slice(0, MAX_VALUE_LENGTH - 1)}…` : text;
}
