/**
 * The dashboard's port: what the page needs from the daemon. The daemon implements it
 * (`daemon-source.ts`); the route tests use a fake. Field names are snake_case because they are
 * the JSON the page reads.
 */
import type { SessionView } from "../channels/http/control-plane.js";
import type { ActivitySnapshot } from "./activity-log.js";
import type { TranscriptTurn } from "./transcript.js";

export type { SessionView } from "../channels/http/control-plane.js";
export type { TranscriptTurn } from "./transcript.js";

/** A session as the dashboard shows it: the API's view plus what only a dashboard wants. */
export interface DashboardSession extends SessionView {
  /** Resident memory of the session's agent process, when it is live and it could be read. */
  memory_bytes: number | null;
  /**
   * What the chat's agent sessions (the current one and those it replaced) have cost, summed from
   * the journal's turn records; null when no turn is recorded. Turns of unknown cost are left out.
   */
  cost_so_far_usd: number | null;
  /** Recorded turns whose cost could not be told. */
  cost_unknown_turns: number;
}

/** One chat with messages waiting for an answer. */
export interface QueueDepth {
  chat_id: string;
  session_name: string;
  contact_name: string | null;
  state: string;
  unanswered: number;
}

export interface HealthSnapshot extends ActivitySnapshot {
  generated_at: string;
  status: "ok" | "shutting_down";
  version: string;
  uptime_seconds: number;
  /** Chats with unanswered messages, deepest first. */
  queues: QueueDepth[];
  sessions: {
    registered: number;
    live: number;
    /** The pool bound (`maxLiveSessions`); null when unbounded or unknown. */
    bound: number | null;
    /** Chats waiting for a pool slot; null when unknown. */
    waiting: number | null;
    evictions: number | null;
  };
  /** Pre-started agent processes: the target (`spareProcesses`) and how many are ready now. */
  spares: { configured: number | null; ready: number | null };
}

/** What the page shows about the daemon on every view. */
export interface DashboardAbout {
  version: string;
  /**
   * Started with `--demo`: replies come from the bundled offline stand-in model, every chat is
   * answered, and costs are what the CLI priced the stand-in's made-up usage at, not real costs.
   */
  demo: boolean;
  /** The registry entry's fields in the order `sessions.json` writes them. */
  registry_fields: readonly string[];
}

export type SessionListener = (sessions: DashboardSession[]) => void;

export interface DashboardSource {
  about(): DashboardAbout;
  listSessions(): DashboardSession[];
  getSession(chatId: string): DashboardSession | undefined;
  /** The conversation as the agent saw it, from the CLI's transcript; empty when none is found. */
  transcript(chatId: string): Promise<TranscriptTurn[]>;
  health(): HealthSnapshot;
  /**
   * `listener` gets the full list on every change; `onEnd`, once, when no more changes will come
   * (the daemon is shutting down). Returns a function that unsubscribes.
   */
  subscribe(listener: SessionListener, onEnd?: () => void): () => void;
  restart(chatId: string): Promise<DashboardSession>;
  stop(chatId: string): Promise<void>;
  /** Stops the session and drops its registry entry: the chat starts afresh next time. */
  forget(chatId: string): Promise<void>;
  /** Sends `text` as that chat and resolves with the reply (null when the agent kept silent). */
  send(chatId: string, text: string): Promise<string | null>;
}
