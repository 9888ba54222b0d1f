import { lstatSync } from "node:fs";
import { mkdir, realpath } from "node:fs/promises";
import path from "node:path";
import { DispatchError } from "../utils/errors.js";
import { isSafeSessionName } from "../identity/session-name.js";
import { claudeProjectFolders } from "../agent/claude-cli-layout.js";

/**
 * The session manager's port for session folders; `createSessionFolders` below is its adapter.
 * `prepare` makes a session's working folder and returns its absolute path.
 */
export interface SessionFolders {
  prepare(sessionName: string): Promise<string>;
  /**
   * Whether anything of a session by this name is on disk: its folder (even one nobody
   * registered), the Claude CLI's data for that folder, or a forgotten session's archive. A new
   * chat never gets such a name: it would inherit the files and the CLI's memory. Synchronous
   * and cheap, as a new chat's name is picked by asking it once per candidate.
   */
  isInUse(sessionName: string): boolean;
}

export interface SessionFoldersOptions {
  /**
   * The Claude CLI's config folder (`~/.claude`): a name whose folder the CLI holds data for
   * (transcripts, auto memory) is in use even when the folder itself is gone.
   */
  claudeDir?: string;
  /** Whether a forgotten session of this name is archived (`daemon/session-archive.ts`). */
  isArchived?: (sessionName: string) => boolean;
}

/**
 * The session folders under the transcripts folder (`~/transcripts/<session-name>`). A name is
 * checked again here, because it may come from a hand-edited registry: no name ever yields a
 * path outside the transcripts folder.
 */
export function createSessionFolders(
  transcriptsDir: string,
  options: SessionFoldersOptions = {},
): SessionFolders {
  const root = path.resolve(transcriptsDir);
  return {
    async prepare(sessionName) {
      if (!isSafeSessionName(sessionName)) {
        throw new DispatchError(
          "unsafe_session_name",
          `Session name ${JSON.stringify(sessionName)} is not a safe folder name; fix or remove its entry in sessions.json`,
        );
      }
      const folder = path.join(root, sessionName);
      await mkdir(folder, { recursive: true, mode: 0o700 });
      // A symlink planted in the transcripts folder must not lead a session elsewhere.
      const [realRoot, realFolder] = await Promise.all([realpath(root), realpath(folder)]);
      if (path.dirname(realFolder) !== realRoot) {
        throw new DispatchError(
          "unsafe_session_name",
          `Session folder ${folder} resolves outside ${root}; remove the link and restart the session`,
        );
      }
      return realFolder;
    },
    isInUse(sessionName) {
      // Anything by that name (a folder, a file, a dangling link) would be handed over.
      if (exists(path.join(root, sessionName))) return true;
      if (options.isArchived?.(sessionName) === true) return true;
      if (options.claudeDir === undefined) return false;
      return claudeProjectFolders(options.claudeDir, root, sessionName).some(({ folder }) =>
        exists(folder),
      );
    },
  };
}

/** Whether anything is at `file`; one that cannot be looked at counts as there. */
function exists(file: string): boolean {
  try {
    return lstatSync(file, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return true;
  }
}
