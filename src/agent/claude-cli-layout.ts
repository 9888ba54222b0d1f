/**
 * The Claude CLI's on-disk layout, the one place dispatch writes its rules down:
 * - its config folder: `CLAUDE_CONFIG_DIR`, else `~/.claude` (`claudeConfigDir`), and where a
 *   login's credentials are (`claudeCredentialsFile`);
 * - where it keeps what it knows of a working folder: `<claude dir>/projects/<key>`, the key being
 *   the folder's path with every character other than a letter or a digit replaced by `-`, cut at
 *   200 characters and followed by a hash of the whole path when longer (the CLI's own rule, as
 *   its bundled source has it). Its transcripts live there, and its auto memory
 *   (`memory/MEMORY.md`), which the CLI puts into the context of every session started in that
 *   folder: whoever gets the folder's path gets that memory too;
 * - a session's transcript: `<claude dir>/projects/<key>/<session id>.jsonl`. When the working
 *   folder's project does not hold it (a folder reached through a link, a folder that moved),
 *   the CLI looks in every project folder, and so do we (`findTranscriptFile`);
 * - the temporary folder the SDK sets up to resume a session from dispatch's copy
 *   (`<tmp>/claude-resume-*`), with the CLI's config folder in `<root>/.claude`
 *   (`resumeConfigDirs`).
 */
import { realpathSync } from "node:fs";
import { open, readdir, stat } from "node:fs/promises";
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
 * The paths a session's working folder may have had as the CLI's working folder: as given, and
 * with its links resolved (the CLI sees the resolved one); a folder not created yet (or already
 * removed) has its parent's links resolved, the transcripts folder's. Synchronous: a new chat's
 * name is checked with it, once per candidate.
 */
export function workingFolderPaths(cwd: string): string[] {
  const given = path.resolve(cwd);
  return [...new Set([given, resolvedPath(given)])];
}

/** `folder` with its links resolved, else its parent's (it does not exist), else as given. */
function resolvedPath(folder: string): string {
  try {
    return realpathSync(folder);
  } catch {
    // not created yet: its parent may still be reached through a link
  }
  try {
    return path.join(realpathSync(path.dirname(folder)), path.basename(folder));
  } catch {
    return folder;
  }
}

/** The CLI's project folder names for a working folder: one per path in `workingFolderPaths`. */
export function claudeProjectKeys(cwd: string): string[] {
  return [...new Set(workingFolderPaths(cwd).map(claudeProjectKey))];
}

/** The CLI's project folders for a session's folder, `<transcriptsDir>/<sessionName>`. */
export function claudeProjectFolders(
  claudeDir: string,
  transcriptsDir: string,
  sessionName: string,
): { key: string; folder: string }[] {
  return claudeProjectKeys(path.join(transcriptsDir, sessionName)).map((key) => ({
    key,
    folder: path.join(projectsFolderOf(claudeDir), key),
  }));
}

/** Java's `String.hashCode` over UTF-16 code units, as the CLI hashes a long path. */
function stringHash(text: string): number {
  let hash = 0;
  for (let index = 0; index < text.length; index += 1) {
    hash = ((hash << 5) - hash + text.charCodeAt(index)) | 0;
  }
  return hash;
}

/** The Claude CLI's config folder for an environment: `CLAUDE_CONFIG_DIR`, else `~/.claude`. */
export function claudeConfigDir(
  env: Readonly<Record<string, string | undefined>>,
  homeDir: string,
): string {
  const configured = env.CLAUDE_CONFIG_DIR;
  if (configured !== undefined && configured.trim() !== "") return path.resolve(configured);
  return path.join(env.HOME ?? homeDir, ".claude");
}

/**
 * Where `claude login` keeps its credentials outside macOS (there: the Keychain), as the
 * credentials check at start and `dispatch doctor` look for them: in `.claude` of the home folder.
 */
export function claudeCredentialsFile(homeDir: string): string {
  return path.join(homeDir, ".claude", ".credentials.json");
}

/** Session ids are UUIDs; anything else (the registry may be edited by hand) must not become part of a path. */
const SAFE_SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,127}$/;

/** The folder of a config folder that holds one folder per project. */
export function projectsFolderOf(claudeDir: string): string {
  return path.join(claudeDir, "projects");
}

/** The transcript file of a session in a project folder of a config folder. */
export function transcriptFileOf(claudeDir: string, projectKey: string, sessionId: string): string {
  return path.join(projectsFolderOf(claudeDir), projectKey, `${sessionId}.jsonl`);
}

export interface TranscriptLocation {
  /** The CLI's config folder: `~/.claude`, or `CLAUDE_CONFIG_DIR`. */
  claudeDir: string;
  /** The session's working folder (`<transcriptsDir>/<session name>`). */
  cwd: string;
  sessionId: string;
}

/**
 * The file the CLI keeps a session's transcript in, undefined when there is none (yet): looked
 * for in the working folder's project folders first, then in every other project folder.
 */
export async function findTranscriptFile(
  location: TranscriptLocation,
): Promise<string | undefined> {
  if (!SAFE_SESSION_ID.test(location.sessionId)) return undefined;
  const own = claudeProjectKeys(location.cwd);
  const entries = await readdir(projectsFolderOf(location.claudeDir), {
    withFileTypes: true,
  }).catch(() => []);
  const others = entries
    .filter((entry) => entry.isDirectory() && !own.includes(entry.name))
    .map((entry) => entry.name);
  for (const projectKey of [...own, ...others]) {
    const candidate = transcriptFileOf(location.claudeDir, projectKey, location.sessionId);
    const found = await stat(candidate).then(
      (stats) => stats.isFile(),
      () => false,
    );
    if (found) return candidate;
  }
  return undefined;
}

/** Transcripts larger than this are read from their end: the latest turns matter most. */
export const MAX_TRANSCRIPT_BYTES = 16 * 1024 * 1024;

/** The transcript's text, or undefined when there is none (yet). */
export async function readTranscriptFile(
  location: TranscriptLocation,
  maxBytes = MAX_TRANSCRIPT_BYTES,
): Promise<string | undefined> {
  const file = await findTranscriptFile(location);
  return file === undefined ? undefined : readTail(file, maxBytes);
}

/** The file's text, or its last `maxBytes` from the first whole line; undefined when absent. */
async function readTail(file: string, maxBytes: number): Promise<string | undefined> {
  let handle;
  try {
    handle = await open(file, "r");
  } catch {
    return undefined;
  }
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    const text = buffer.toString("utf8");
    return length < size ? text.slice(text.indexOf("\n") + 1) : text;
  } finally {
    await handle.close();
  }
}

/** The SDK's temporary folder for a session resumed from dispatch's copy (in `os.tmpdir()`). */
export const RESUME_FOLDER = /^claude-resume-[\w-]+$/;

/**
 * The config folders the CLI may have written in, in a resume folder: SDK 0.3.337 puts it in
 * `<root>/.claude`; earlier versions used the root itself, and a folder left by a daemon killed
 * before an upgrade still has that layout.
 */
export function resumeConfigDirs(root: string): string[] {
  return [path.join(root, ".claude"), root];
}
