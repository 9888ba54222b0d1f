import type { SessionArchive } from "../../src/core/session-manager.js";
import type { SessionFolders } from "../../src/store/session-folders.js";
import type { Registry } from "../../src/store/registry.js";

/**
 * Session folders and an archive of forgotten sessions, held in memory: a prepared folder is at
 * `/transcripts/<name>`, a forgotten one moves to `/archive/<name>` and its name stays in use,
 * as with the real ones (`store/session-folders.ts`, `daemon/session-archive.ts`).
 */
export function fakeSessionDisk(registry: Registry) {
  /** Names of the folders prepared, in order, one per session start. */
  const prepared: string[] = [];
  /** Names of folders on disk: prepared ones, and any a test puts there. */
  const onDisk = new Set<string>();
  const archived = new Set<string>();
  const folders: SessionFolders = {
    prepare(name) {
      prepared.push(name);
      onDisk.add(name);
      return Promise.resolve(`/transcripts/${name}`);
    },
    isInUse: (name) => onDisk.has(name) || archived.has(name),
  };
  const archive: SessionArchive = {
    async forget(chatId, entry) {
      registry.remove(chatId);
      await registry.flush();
      onDisk.delete(entry.session_name);
      archived.add(entry.session_name);
      return `/archive/${entry.session_name}`;
    },
  };
  return { folders, archive, prepared, onDisk, archived };
}
