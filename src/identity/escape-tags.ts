/**
 * Escapes the tags a contact's text could imitate to be read as something other than their
 * words: dispatch's own envelope, and the tags the Claude Code harness writes into the
 * conversation itself (`<system-reminder>`, `<command-name>`, ...), which the model trusts more
 * than a user's text. Only the "<" that opens such a tag changes ("&lt;"), so ordinary angle
 * brackets read as written; text already in the escaped form gets one more "amp;", so
 * `unescapeTags` gives back every text exactly. Pure.
 */

/**
 * The envelope's tag (`wrap-message.ts`), and the beginnings of the two of the envelope before it
 * (`<dispatch-message>`, `<untrusted-text>`), which transcripts written then still hold.
 */
export const ENVELOPE_TAG_NAMES = ["msg", "dispatch", "untrusted"] as const;

/**
 * The tags the Claude Code CLI (2.1.337, the SDK's bundled one) puts into the conversation,
 * as its own list of harness tags names them, plus the model's tool-call markup (`antml:`).
 */
export const HARNESS_TAG_NAMES = [
  "system-reminder",
  "system_reminder",
  "system-note",
  "command-name",
  "command-message",
  "command-args",
  "command-contents",
  "local-command-stdout",
  "local-command-stderr",
  "local-command-caveat",
  "bash-input",
  "bash-stdout",
  "bash-stderr",
  "bash-exit-code",
  "user-prompt-submit-hook",
  "post-tool-use-hook",
  "user-memory-input",
  "task-notification",
  "task-id",
  "tool-use-id",
  "agent-message",
  "teammate-message",
  "cross-session-message",
  "channel",
  "tick",
  "wake",
  "new-diagnostics",
  "previous-conversation",
  "persisted-output",
  "fetched-web-content",
  "function_results",
  "function_calls",
  "tool_use_error",
  "sandbox_violations",
  "total_tokens",
  "fork-boilerplate",
  "ide_selection",
  "ide_opened_file",
  "mcp-resource-update",
  "mcp-polling-update",
  "antml",
] as const;

/**
 * The part of a tag after "<": optional "/" and whitespace, then one of the names, in any case,
 * at the start of the tag's name (`<system-reminder-2` is escaped too). Spelled with character
 * classes rather than the "i" flag, because "&lt;" and "&amp;" must match case-sensitively for
 * the escaping to be reversible.
 */
const TAG_AFTER_BRACKET = `[\\s/]*(?:${[...ENVELOPE_TAG_NAMES, ...HARNESS_TAG_NAMES].map(anyCase).join("|")})`;
const TAG_OR_ESCAPED_TAG = new RegExp(`(?:<|&((?:amp;)*)lt;)(?=${TAG_AFTER_BRACKET})`, "g");
const ESCAPED_TAG = new RegExp(`&((?:amp;)*)lt;(?=${TAG_AFTER_BRACKET})`, "g");

/**
 * Escapes every "<" that opens one of the tags above, and adds one "amp;" to any text already in
 * the escaped form, so `unescapeTags` can always tell the two apart.
 */
export function escapeTags(text: string): string {
  return text.replace(TAG_OR_ESCAPED_TAG, (match, amps: string | undefined) =>
    match === "<" ? "&lt;" : `&amp;${amps ?? ""}lt;`,
  );
}

/** The exact inverse of `escapeTags`. */
export function unescapeTags(text: string): string {
  return text.replace(ESCAPED_TAG, (_match, amps: string) =>
    amps === "" ? "<" : `&${amps.slice("amp;".length)}lt;`,
  );
}

function anyCase(name: string): string {
  return Array.from(name, (character) =>
    /[a-z]/.test(character)
      ? `[${character}${character.toUpperCase()}]`
      : character.replace(/[-_]/, "\\$&"),
  ).join("");
}
