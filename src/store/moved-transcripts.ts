/**
 * The transcript mirror as the Agent SDK's `sessionStore` sees it, for sessions whose transcript
 * was written under another project. The CLI names a project after the session's working
 * directory, and that differs between a cluster's nodes (each has its own transcripts folder) or
 * after a folder moved: a resume on the new node would look under a key never written and find
 * nothing, or a stale copy from when the session last ran there. So when another project holds
 * a longer copy of a main transcript than its own key, that copy replaces this key's and is
 * loaded: the CLI resumes with its whole context, and its new entries follow the old ones under
 * this key, where the next node to take the session finds them all.
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
      if (key.subpath !== undefined) return own;
      const others = (await store.projectsOf(key.sessionId)).filter(
        (projectKey) => projectKey !== key.projectKey,
      );
      // The longest copy is the newest: each node that resumed the session started from the
      // whole of the one before, then added to it. (Not the latest write time: nodes' clocks
      // differ, and the node before may have written last while it was being fenced out.)
      let longest = own;
      for (const projectKey of others) {
        const copy = await store.load({ projectKey, sessionId: key.sessionId });
        if (copy !== null && copy.length > (longest?.length ?? 0)) longest = copy;
      }
      if (longest === own || longest === null) return own;
      // This project's copy (none, or a stale one from when the session last ran here) becomes
      // the newest one, so the CLI's next entries follow it.
      if (own !== null) await store.delete(key);
      await store.append(key, longest);
      return longest;
    },
    listSessions: (projectKey) => store.listSessions(projectKey),
    delete: (key) => store.delete(key),
    listSubkeys: (key) => store.listSubkeys(key),
    recentEntries: (sessionId, limit) => store.recentEntries(sessionId, limit),
    messageCount: (sessionId) => store.messageCount(sessionId),
    projectsOf: (sessionId) => store.projectsOf(sessionId),
  };
}
