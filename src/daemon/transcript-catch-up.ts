/**
 * Brings dispatch's copy of each session's transcript up to date with the CLI's own files at
 * start. The copy is fed by the SDK while the daemon lives; what a CLI wrote after the daemon
 * died (an orphaned CLI finishing its turn) or before the SDK passed it on reaches only the CLI's
 * file: `~/.claude/projects/<project>/<session id>.jsonl`, or, for a session the SDK resumed from
 * the copy, the file in the temporary folder it set up for that (`<tmp>/claude-resume-*`), which
 * a killed daemon never removes. Once the copy holds a session, the SDK resumes from the copy, so
 * a copy that missed those turns would bring the session back without them: the crash loop
 * (`test/soak/`) saw whole stretches of a conversation go that way.
 *
 * Only a tail is ever added: the entries a file holds after the last one the copy has. When the
 * copy's last entry is not in a file at all, the CLI has written elsewhere since and that file is
 * stale: nothing is added from it. The temporary folders of our sessions are removed afterwards.
 *
 * It runs only when the run before did not end cleanly (`catchUpAfterUncleanStop`): a graceful
 * stop leaves the copy holding every entry of the CLI's files that the CLI mirrors at all
 * (`test/e2e/transcript-catch-up.test.ts`), so after one there is nothing to catch up, and start
 * does not `realpath` and `stat` once per registered chat.
 */
import { readdir, readFile, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describeError } from "../utils/errors.js";
import {
  claudeProjectKeys,
  projectsFolderOf,
  RESUME_FOLDER,
  resumeConfigDirs,
  transcriptFileOf,
} from "../agent/claude-cli-layout.js";
import type { Logger } from "../logging/logger.js";
import type { Registry } from "../store/registry.js";
import type { SessionStoreEntry, TranscriptStore } from "../store/transcript-store.js";

/** The lines of a transcript file that are entries; a line a crash cut off is skipped. */
export function parseTranscriptLines(text: string): SessionStoreEntry[] {
  const entries: SessionStoreEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const value: unknown = JSON.parse(line);
      if (typeof value === "object" && value !== null && !Array.isArray(value)) {
        const entry = value as Record<string, unknown>;
        if (typeof entry.type === "string") entries.push(entry as SessionStoreEntry);
      }
    } catch {
      // cut off mid-write by a crash
    }
  }
  return entries;
}

/**
 * Entries the CLI keeps in its own file only and never passes to a session store, not even while
 * the daemon runs: its records of API requests, which it marks "never" mirrored. A blob holds a
 * whole request; a catch-up must not copy them either.
 */
export const LOCAL_ONLY_TYPES: ReadonlySet<string> = new Set([
  "api-request",
  "api-request-shape",
  "api-request-blob",
  "api-request-resumed",
]);

/**
 * The entries of `file` that `copy` lacks, when they are a tail of the file (see above), but the
 * local-only ones.
 */
export function missingTail(
  file: readonly SessionStoreEntry[],
  copy: readonly SessionStoreEntry[],
): SessionStoreEntry[] {
  const copied = new Set(copy.flatMap((entry) => (entry.uuid ? [entry.uuid] : [])));
  const lastCopied = copy.findLast((entry) => entry.uuid !== undefined)?.uuid;
  let start = 0;
  if (lastCopied !== undefined) {
    const index = file.findIndex((entry) => entry.uuid === lastCopied);
    if (index === -1) return [];
    start = index + 1;
  } else if (copy.length > 0) {
    return [];
  }
  return file
    .slice(start)
    .filter(
      (entry) =>
        !LOCAL_ONLY_TYPES.has(entry.type) && (entry.uuid === undefined || !copied.has(entry.uuid)),
    );
}

export interface TranscriptCatchUpDeps {
  registry: Registry;
  transcripts: TranscriptStore;
  transcriptsDir: string;
  /** The CLI's config folder (`~/.claude`). */
  claudeDir: string;
  /** Where the SDK makes its temporary folders; `os.tmpdir()` by default. */
  tmpDir?: string;
  logger: Logger;
}

export interface CatchUpResult {
  /** Sessions whose copy got entries. */
  caughtUp: number;
  /** Sessions whose catch-up failed: their copy stays as it was. */
  failed: number;
}

/**
 * The catch-up at start, gated: only when the previous run did not end cleanly, which the
 * instance lock tells (a lock left behind and taken over). After a clean stop it is skipped,
 * and says so. Returns undefined when skipped.
 */
export async function catchUpAfterUncleanStop(
  deps: TranscriptCatchUpDeps & { uncleanStop: boolean },
): Promise<CatchUpResult | undefined> {
  if (!deps.uncleanStop) {
    deps.logger.info("transcript-catch-up-skip", { reason: "clean-stop" });
    return undefined;
  }
  const startedAt = performance.now();
  const result = await catchUpTranscriptCopies(deps);
  deps.logger.info("transcript-catch-up-end", {
    reason: "unclean-stop",
    ...result,
    durationMs: Math.round(performance.now() - startedAt),
  });
  return result;
}

/** Catches up every registered session's copy. */
export async function catchUpTranscriptCopies(deps: TranscriptCatchUpDeps): Promise<CatchUpResult> {
  const leftovers = await resumeFolders(deps.tmpDir ?? os.tmpdir());
  const ours = new Set<string>();
  let caughtUp = 0;
  let failed = 0;
  // The chats of one person's session share its id: it is caught up once.
  const sessions = new Set<string>();
  for (const [chatId, entry] of deps.registry.entries()) {
    if (!entry.session_id || sessions.has(entry.session_id)) continue;
    sessions.add(entry.session_id);
    try {
      const cwd = path.join(path.resolve(deps.transcriptsDir), entry.session_name);
      const projectKeys = claudeProjectKeys(cwd);
      const files: { projectKey: string; file: string }[] = [];
      for (const projectKey of projectKeys) {
        ours.add(projectKey);
        files.push({
          projectKey,
          file: transcriptFileOf(deps.claudeDir, projectKey, entry.session_id),
        });
        for (const folder of leftovers.get(projectKey) ?? []) {
          files.push({
            projectKey,
            file: transcriptFileOf(folder.configDir, projectKey, entry.session_id),
          });
        }
      }
      const added = await catchUpSession(deps.transcripts, entry.session_id, files);
      if (added > 0) {
        caughtUp += 1;
        deps.logger.info("transcript-catch-up", { chatId, entries: added });
      }
    } catch (error) {
      // The copy stays as it was: no worse than before.
      failed += 1;
      deps.logger.warn("transcript-catch-up-failed", { chatId, cause: describeError(error) });
    }
  }
  for (const [projectKey, folders] of leftovers) {
    if (!ours.has(projectKey)) continue;
    for (const folder of folders) await rm(folder.root, { recursive: true, force: true });
  }
  return { caughtUp, failed };
}

/** A leftover resume folder: the root to remove and the config folder the CLI wrote in. */
interface ResumeFolder {
  root: string;
  configDir: string;
}

/** The SDK's leftover resume folders by the one project each holds. */
async function resumeFolders(tmpDir: string): Promise<Map<string, ResumeFolder[]>> {
  const byProject = new Map<string, ResumeFolder[]>();
  const names = await readdir(tmpDir).catch(() => [] as string[]);
  for (const name of names) {
    if (!RESUME_FOLDER.test(name)) continue;
    const root = path.join(tmpDir, name);
    for (const configDir of resumeConfigDirs(root)) {
      const projects = await readdir(projectsFolderOf(configDir)).catch(() => [] as string[]);
      if (projects.length !== 1) continue;
      byProject.set(projects[0]!, [...(byProject.get(projects[0]!) ?? []), { root, configDir }]);
      break;
    }
  }
  return byProject;
}

/** Adds to the copy what each file holds after it, oldest file first; returns entries added. */
async function catchUpSession(
  transcripts: TranscriptStore,
  sessionId: string,
  candidates: readonly { projectKey: string; file: string }[],
): Promise<number> {
  const files: { projectKey: string; file: string; modified: number }[] = [];
  for (const candidate of candidates) {
    const modified = await stat(candidate.file).then(
      (stats) => stats.mtimeMs,
      () => undefined,
    );
    if (modified !== undefined) files.push({ ...candidate, modified });
  }
  files.sort((left, right) => left.modified - right.modified);
  const copiedAt = new Map<string, number | undefined>();
  let added = 0;
  for (const { projectKey, file, modified } of files) {
    if (!copiedAt.has(projectKey)) {
      const copied = (await transcripts.listSessions(projectKey)).find(
        (session) => session.sessionId === sessionId,
      );
      copiedAt.set(projectKey, copied?.mtime);
    }
    // The SDK writes the copy after the file: a copy written later than the file has it all.
    const copiedMs = copiedAt.get(projectKey);
    if (copiedMs !== undefined && copiedMs >= modified) continue;
    const key = { projectKey, sessionId };
    const tail = missingTail(
      parseTranscriptLines(await readFile(file, "utf8")),
      (await transcripts.load(key)) ?? [],
    );
    if (tail.length > 0) await transcripts.append(key, tail);
    added += tail.length;
  }
  return added;
}
