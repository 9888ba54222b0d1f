/**
 * The shape of a line of the Claude CLI's session transcript (`<session id>.jsonl`, or the same
 * object in dispatch's transcript copy), as its readers take it apart: the dashboard
 * (`dashboard/transcript.ts`) and the replay's search for an earlier answer
 * (`daemon/earlier-answer.ts`). The lines are the CLI's: every field is checked before it is used,
 * and what does not fit is skipped, never thrown on.
 */

/** A transcript line, or any object in one (a message, a content block, an attachment). */
export type TranscriptLine = Record<string, unknown>;

/** `value` when it is an object (not an array), else undefined. */
export function recordOf(value: unknown): TranscriptLine | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as TranscriptLine)
    : undefined;
}

/** One line of a transcript file as its object; undefined for a blank line or one that is not. */
export function parseTranscriptLine(text: string): TranscriptLine | undefined {
  if (text.trim() === "") return undefined;
  try {
    return recordOf(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/**
 * A message's content as blocks: a prompt the CLI wrote as a string is one `text` block; of an
 * array, the blocks that are objects.
 */
export function contentBlocks(content: unknown): TranscriptLine[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  if (!Array.isArray(content)) return [];
  return content.flatMap((block) => {
    const value = recordOf(block);
    return value ? [value] : [];
  });
}

/** The text of a message's content: its `text` blocks, one a line. */
export function textOf(content: unknown): string {
  return contentBlocks(content)
    .flatMap((block) =>
      block.type === "text" && typeof block.text === "string" ? [block.text] : [],
    )
    .join("\n");
}
