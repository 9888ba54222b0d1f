/**
 * Finds and reads the Claude CLI's transcript of a session: `<claude dir>/projects/<project>/
 * <session id>.jsonl`, where the project folder is the session's working folder with every
 * character other than a letter or a digit replaced by `-` (`/home/u/transcripts/john-doe` ->
 * `-home-u-transcripts-john-doe`). When that folder does not hold it (a CLI that shortens long
 * names, a folder reached through a link), every project folder is looked in.
 */
import { open, readdir, realpath } from "node:fs/promises";
import path from "node:path";

/** Transcripts larger than this are read from their end: the latest turns matter most. */
export const MAX_TRANSCRIPT_BYTES = 16 * 1024 * 1024;

const SAFE_SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,127}$/;

export function projectFolderName(cwd: string): string {
  return cwd.replace(/[^A-Za-z0-9]/g, "-");
}

export interface TranscriptLocation {
  /** The CLI's config folder: `~/.claude`, or `CLAUDE_CONFIG_DIR`. */
  claudeDir: string;
  /** The session's working folder (`<transcriptsDir>/<session name>`). */
  cwd: string;
  sessionId: string;
}

/** The transcript's text, or undefined when there is none (yet). */
export async function readTranscriptFile(
  location: TranscriptLocation,
  maxBytes = MAX_TRANSCRIPT_BYTES,
): Promise<string | undefined> {
  // The id comes from the registry, which a person may edit: it must not lead out of the folder.
  if (!SAFE_SESSION_ID.test(location.sessionId)) return undefined;
  const projects = path.join(location.claudeDir, "projects");
  const fileName = `${location.sessionId}.jsonl`;
  const folders = [projectFolderName(location.cwd)];
  const real = await realpath(location.cwd).catch(() => undefined);
  if (real !== undefined && real !== location.cwd) folders.push(projectFolderName(real));
  for (const folder of folders) {
    const text = await readTail(path.join(projects, folder, fileName), maxBytes);
    if (text !== undefined) return text;
  }
  const entries = await readdir(projects, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (!entry.isDirectory() || folders.includes(entry.name)) continue;
    const text = await readTail(path.join(projects, entry.name, fileName), maxBytes);
    if (text !== undefined) return text;
  }
  return undefined;
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

/** The Claude CLI's config folder for an environment: `CLAUDE_CONFIG_DIR`, else `~/.claude`. */
export function claudeConfigDir(
  env: Readonly<Record<string, string | undefined>>,
  homeDir: string,
): string {
  const configured = env.CLAUDE_CONFIG_DIR;
  if (configured !== undefined && configured.trim() !== "") return path.resolve(configured);
  return path.join(env.HOME ?? homeDir, ".claude");
}
