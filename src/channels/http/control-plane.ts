import type { InboundMessage } from "../channel.js";

/**
 * What the HTTP API needs from the daemon. The daemon implements it; the API's tests use a fake.
 * Every method throws `DispatchError` with a code the API maps to a status (see `http-errors.ts`).
 */
export interface ControlPlane {
  /**
   * Takes a message in. With `wait`, resolves once the turn that answers it has ended;
   * otherwise as soon as it has been accepted.
   */
  submit(message: InboundMessage, options: { wait: boolean }): Promise<SubmitResult>;
  listSessions(): SessionView[];
  getSession(chatId: string): SessionView | undefined;
  restartSession(chatId: string): Promise<SessionView>;
  /**
   * Stops the session; with `forget` also drops its registry entry and moves its files to the
   * archive of forgotten sessions, whose folder it returns.
   */
  stopSession(chatId: string, options: { forget: boolean }): Promise<StopResult>;
  health(): HealthView;
  /** Every node of the cluster (one, this daemon, without a shared database), by node id. */
  listNodes(): Promise<NodeView[]>;
  metrics(): Promise<{ contentType: string; body: string }>;
}

export interface StopResult {
  /** Where a forgotten session's files went; null for a plain stop. */
  archive: string | null;
}

export interface SubmitResult {
  chat_id: string;
  message_id: string;
  session_name: string;
  session_id: string | null;
  /** Present when the caller waited: the agent's reply, or null when it chose silence. */
  reply?: string | null;
}

/** One chat's session as the API shows it (registry entry plus live state). */
export interface SessionView {
  chat_id: string;
  session_name: string;
  contact_name: string | null;
  tier: string;
  session_id: string | null;
  state: string;
  created_at: string;
  last_message_time: string | null;
  chat_kind: string;
  channel: string | null;
  turns: number;
  errors: number;
  restarts: number;
  unanswered: number;
  pid: number | null;
  total_cost_usd: number | null;
  previous_session_ids: readonly { session_id: string; replaced_at: string; reason: string }[];
  /** The node that owns the chat's session (`GET /v1/nodes`); null when no node holds it. */
  node: string | null;
}

/** One node of the cluster as `GET /v1/nodes` shows it (`docs/cluster.md`). */
export interface NodeView {
  node_id: string;
  /** Where its HTTP API is. */
  address: string;
  /** `serving`, `draining` (stopping: keeps its chats, takes no new ones) or `gone` (left). */
  state: string;
  /** When this run of the node started. */
  started_at: string;
  /** When it last wrote its row. */
  last_heartbeat_at: string;
  heartbeat_age_seconds: number;
  /** `alive` while its last heartbeat holds (`cluster.leaseSeconds`), else `expired`. */
  lease: "alive" | "expired";
  /** Its live-session slots: taken and in all (`maxLiveSessions`). */
  pool: { live: number; total: number };
  /** The channels it has on, such as `http` and `imessage`. */
  channels: string[];
  /** How many chats it owns. */
  chats: number;
  /** Whether this is the node that answered the request. */
  self: boolean;
}

export interface HealthView {
  status: "ok" | "shutting_down";
  version: string;
  /** Replies come from the bundled offline stand-in model (`dispatch start --demo`). */
  demo?: boolean;
  uptime_seconds: number;
  sessions: { registered: number; live: number };
}
