/**
 * The transcript mirror port: dispatch's own copy of the Claude CLI's session transcripts, shaped
 * as the Agent SDK's `sessionStore` option, so a session resumes with its context even when
 * `~/.claude` was wiped or swept (or, in a cluster, lives on another machine). Two adapters: SQLite
 * in the state database (`sqlite-transcript-store.ts`, the default) and PostgreSQL
 * (`postgres/postgres-transcript-store.ts`); `test/unit/store/transcript-store-contract.ts` runs
 * the same cases against both. The SDK is not imported here (one module owns it): the types below
 * match the SDK's `SessionKey`, `SessionStoreEntry` and `SessionStore` structurally.
 *
 * Semantics, from the SDK's contract and its conformance suite: entries persist in append-call
 * order; an entry with a `uuid` is stored once per key (replays are ignored); entries without one
 * are always appended; appending no entries writes nothing; `load` returns what was appended, in
 * order, or null for a key never written; deleting a main transcript deletes its subagent
 * transcripts too. Every method reports a failure as a rejected promise with a `DispatchError`.
 */

export interface SessionKey {
  projectKey: string;
  sessionId: string;
  /** Undefined for the main transcript; `subagents/agent-<id>` and the like for the others. */
  subpath?: string;
}

export type SessionStoreEntry = {
  type: string;
  uuid?: string;
  timestamp?: string;
  [k: string]: unknown;
};

export interface TranscriptStore {
  append(key: SessionKey, entries: SessionStoreEntry[]): Promise<void>;
  load(key: SessionKey): Promise<SessionStoreEntry[] | null>;
  /** Main transcripts of a project, with their last write time (integer epoch ms). */
  listSessions(projectKey: string): Promise<{ sessionId: string; mtime: number }[]>;
  /** Deletes one transcript; for a main transcript, its subagent transcripts too. */
  delete(key: SessionKey): Promise<void>;
  listSubkeys(key: { projectKey: string; sessionId: string }): Promise<string[]>;
  /**
   * The last `limit` entries of a session's main transcript, oldest first, in the project it was
   * written under last (a session has one project unless its folder moved).
   */
  recentEntries(sessionId: string, limit: number): Promise<SessionStoreEntry[]>;
  /**
   * User and assistant messages (distinct by `uuid`) in a session's main transcript, in the
   * project that holds the most of them: what a resume of that session should bring back.
   */
  messageCount(sessionId: string): Promise<number>;
  /**
   * The projects holding a main transcript of the session (one, unless its folder moved, or it
   * ran on several nodes of a cluster), the most recently written first.
   */
  projectsOf(sessionId: string): Promise<string[]>;
}
