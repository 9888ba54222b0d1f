/**
 * The transcript a resumed Claude CLI starts from, and how many conversation messages it holds.
 * The CLI resumes from its transcript file (`claude-cli-layout.ts`): a copy the SDK wrote from
 * dispatch's transcript store (then the config dir is a temporary one), or the CLI's own file.
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { findTranscriptFile } from "./claude-cli-layout.js";

/**
 * User and assistant messages (distinct by `uuid`, as dispatch's copy stores them) in the
 * transcript the CLI resumes `sessionId` from; 0 when there is none. Lines that do not parse
 * (a torn last line) are skipped.
 */
export async function countResumedMessages(options: {
  claudeConfigDir: string;
  cwd: string;
  sessionId: string;
}): Promise<number> {
  const file = await findTranscriptFile({
    claudeDir: options.claudeConfigDir,
    cwd: options.cwd,
    sessionId: options.sessionId,
  });
  return file === undefined ? 0 : countMessagesIn(file);
}

async function countMessagesIn(file: string): Promise<number> {
  const seen = new Set<string>();
  const lines = createInterface({
    input: createReadStream(file, { encoding: "utf8" }),
    crlfDelay: Infinity,
  });
  for await (const line of lines) {
    const uuid = messageUuidOf(line);
    if (uuid !== undefined) seen.add(uuid);
  }
  return seen.size;
}

/** The `uuid` of a user or assistant transcript line, else undefined. */
export function messageUuidOf(line: string): string | undefined {
  // Cheap test first: most lines of a long transcript are messages, but not all.
  if (!line.includes('"uuid"')) return undefined;
  try {
    const entry = JSON.parse(line) as { type?: unknown; uuid?: unknown };
    if (entry.type !== "user" && entry.type !== "assistant") return undefined;
    return typeof entry.uuid === "string" ? entry.uuid : undefined;
  } catch {
    return undefined;
  }
}
