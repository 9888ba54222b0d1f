/**
 * What a narrow shell rule (`Bash(git status:*)`) lets an agent run, decided by dispatch before
 * the CLI sees the command. The CLI on its own also runs commands it judges read-only (`id`,
 * `cat`, `git log`, `git show HEAD:.bashrc`) without any rule, and reads through them whatever
 * the tier's folder limit keeps from its file tools; a tier with narrow rules gets exactly the
 * commands its rules name, and the CLI's own checks come after.
 *
 * A command passes when it is one simple command (no `;`, `&`, `|`, `<`, `>`, `$`, backquote,
 * parenthesis, backslash or line break: no chaining, pipes, redirection, substitution or
 * variables) and a rule matches all of it:
 * - `Bash(git status)`: exactly `git status`;
 * - `Bash(git status:*)` or `Bash(git status *)`: `git status`, or `git status ` and any
 *   arguments;
 * - `*` anywhere else: any run of characters there (`Bash(git log * --oneline)`); `\*` is a
 *   literal star.
 * Pure: the SDK adapter asks it from a PreToolUse hook.
 */

export type ShellVerdict = { allowed: true } | { allowed: false; reason: string };

/** Characters that make a command more than one simple command, or expand into another. */
const SHELL_SYNTAX = /[;&|<>$`()\\\n\r]/;

export function shellCommandVerdict(command: unknown, rules: readonly string[]): ShellVerdict {
  if (typeof command !== "string" || command.trim() === "") {
    return { allowed: false, reason: "The command is empty." };
  }
  const trimmed = command.trim();
  const syntax = SHELL_SYNTAX.exec(trimmed)?.[0] ?? controlCharacterIn(trimmed);
  if (syntax !== undefined) {
    return {
      allowed: false,
      reason:
        `This chat may run only single commands its rules name; ${JSON.stringify(syntax)} ` +
        "(chaining, pipes, redirection, substitution or variables) is not allowed.",
    };
  }
  if (rules.some((rule) => ruleMatches(rule.trim(), trimmed))) return { allowed: true };
  return {
    allowed: false,
    reason: `This chat may run only these commands: ${rules.map((rule) => `Bash(${rule})`).join(", ")}.`,
  };
}

/** The first control character other than a tab, if any. */
function controlCharacterIn(text: string): string | undefined {
  for (const character of text) {
    const code = character.charCodeAt(0);
    if ((code < 0x20 && character !== "\t") || code === 0x7f) return character;
  }
  return undefined;
}

function ruleMatches(rule: string, command: string): boolean {
  const legacyPrefix = /^(.*\S):\*$/.exec(rule);
  if (legacyPrefix?.[1] !== undefined) return hasPrefix(command, legacyPrefix[1].trim());
  if (!/(?<!\\)\*/.test(rule)) return command === rule.replace(/\\\*/g, "*");
  return wildcardPattern(rule).test(command);
}

/** `git status` or `git status ...`, not `git statusx`. */
function hasPrefix(command: string, prefix: string): boolean {
  return command === prefix || command.startsWith(`${prefix} `);
}

/** `*` is any run of characters; a trailing ` *` may also be absent (`git *` matches `git`). */
function wildcardPattern(rule: string): RegExp {
  const parts = rule.split(/(?<!\\)\*/).map((part) => escapeRegExp(part.replace(/\\\*/g, "*")));
  const [head = "", tail] = parts;
  const source =
    parts.length === 2 && tail === "" && head.endsWith(" ")
      ? `${head.slice(0, -1)}(?: .*)?`
      : parts.join(".*");
  return new RegExp(`^${source}$`, "s");
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
