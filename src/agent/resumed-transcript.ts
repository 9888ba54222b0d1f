/**
 * The transcript a resumed Claude CLI starts from, and how many conversation messages it holds.
 * The CLI resumes from `<config dir>/projects/<project>/<session id>.jsonl`: a copy the SDK
 * wrote from dispatch's transcript store (then the config dir is a temporary one), or the CLI's
 * own file, which it looks for in every project folder when the working folder's has none.
 */
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";

/** The CLI's project folder name for a working folder: every non-alphanumeric becomes `-`. */
function projectFolderOf(cwd: string): string {
  return cwd.replace(/[^A-Za-z0-9]/g, "-");
}

/** Session ids are UUIDs; anything else must not become part of a path. */
const SAFE_SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,127}$/;

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
  const file = await findTranscript(options);
  return file === undefined ? 0 : countMessagesIn(file);
}

async function findTranscript(options: {
  claudeConfigDir: string;
  cwd: string;
  sessionId: string;
}): Promise<string | undefined> {
  if (!SAFE_SESSION_ID.test(options.sessionId)) return undefined;
  const projects = path.join(options.claudeConfigDir, "projects");
  const fileName = `${options.sessionId}.jsonl`;
  const own = projectFolderOf(options.cwd);
  const folders = await readdir(projects, { withFileTypes: true }).catch(() => []);
  const names = folders.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  // The working folder's project first, as the CLI looks.
  const ordered = names.includes(own) ? [own, ...names.filter((name) => name !== own)] : names;
  for (const name of ordered) {
    const candidate = path.join(projects, name, fileName);
    const found = await stat(candidate).then(
      (stats) => stats.isFile(),
      () => false,
    );
    if (found) return candidate;
  }
  return undefined;
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
