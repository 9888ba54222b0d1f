/**
 * The transcript mirror as the Agent SDK's `sessionStore` sees it, for sessions whose transcript
 * was written under another project. The CLI names a project after the session's working
 * directory, and that differs between a cluster's nodes (each has its own transcripts folder) or
 * after a folder moved: a resume on the new node would look under a key never written and find
 * nothing. So a main transcript missing under its own key is copied there from the project that
 * wrote the session last, and loaded from it: the CLI resumes with its whole context, and its new
 * entries follow the old ones under the new key, where the next node to take the session finds
 * them all.
 *
 * A decorator, not part of the stores: their contract (the SDK's conformance suite) is that a key
 * never written loads as null.
 */
import type { SessionKey, SessionStoreEntry, TranscriptStore } from "./transcript-store.js";

export function withMovedSessions(store: TranscriptStore): TranscriptStore {
  return {
    append: (key, entries) => store.append(key, entries),
    load: async (key: SessionKey): Promise<SessionStoreEntry[] | null> => {
      const own = await store.load(key);
      if (own !== null || key.subpath !== undefined) return own;
      const [latest] = (await store.projectsOf(key.sessionId)).filter(
        (projectKey) => projectKey !== key.projectKey,
      );
      if (latest === undefined) return null;
      const entries = await store.load({ projectKey: latest, sessionId: key.sessionId });
      if (entries === null || entries.length === 0) return entries;
      await store.append(key, entries);
      return entries;
    },
    listSessions: (projectKey) => store.listSessions(projectKey),
    delete: (key) => store.delete(key),
    listSubkeys: (key) => store.listSubkeys(key),
    recentEntries: (sessionId, limit) => store.recentEntries(sessionId, limit),
    messageCount: (sessionId) => store.messageCount(sessionId),
    projectsOf: (sessionId) => store.projectsOf(sessionId),
  };
}
