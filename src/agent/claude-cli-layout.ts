/**
 * Where the Claude CLI keeps what it knows of a working folder: `<claude dir>/projects/<key>`,
 * the key being the folder's path with every character other than a letter or a digit replaced
 * by `-`, cut at 200 characters and followed by a hash of the whole path when longer (the CLI's
 * own rule, as its bundled source has it). Its transcripts live there, and its auto memory
 * (`memory/MEMORY.md`), which the CLI puts into the context of every session started in that
 * folder: whoever gets the folder's path gets that memory too.
 */
import { realpathSync } from "node:fs";
import path from "node:path";

/** Longest key the CLI uses whole; a longer one is cut and followed by a hash. */
const MAX_WHOLE_KEY_LENGTH = 200;

/** The CLI's project folder name for a working folder (`/home/u/t/john-doe` -> `-home-u-t-john-doe`). */
export function claudeProjectKey(cwd: string): string {
  const key = cwd.replace(/[^A-Za-z0-9]/g, "-");
  if (key.length <= MAX_WHOLE_KEY_LENGTH) return key;
  return `${key.slice(0, MAX_WHOLE_KEY_LENGTH)}-${Math.abs(stringHash(cwd)).toString(36)}`;
}

/**
 * The paths a session's folder may have had as the CLI's working folder: as configured, and
 * with the transcripts folder's links resolved (the CLI sees the resolved one). Synchronous: a
 * new chat's name is checked with it, once per candidate.
 */
export function sessionFolderPaths(transcriptsDir: string, sessionName: string): string[] {
  const root = path.resolve(transcriptsDir);
  let realRoot = root;
  try {
    realRoot = realpathSync(root);
  } catch {
    // not created yet: no link to resolve
  }
  const paths = [path.join(root, sessionName), path.join(realRoot, sessionName)];
  return [...new Set(paths)];
}

/** The CLI's project folders for a session's folder: one per path in `sessionFolderPaths`. */
export function claudeProjectFolders(
  claudeDir: string,
  transcriptsDir: string,
  sessionName: string,
): { key: string; folder: string }[] {
  const keys = new Set(sessionFolderPaths(transcriptsDir, sessionName).map(claudeProjectKey));
  return [...keys].map((key) => ({ key, folder: path.join(claudeDir, "projects", key) }));
}

/** Java's `String.hashCode` over UTF-16 code units, as the CLI hashes a long path. */
function stringHash(text: string): number {
  let hash = 0;
  for (let index = 0; index < text.length; index += 1) {
    hash = ((hash << 5) - hash + text.charCodeAt(index)) | 0;
  }
  return hash;
}
