/**
 * The session manager's contract with the rest of dispatch: what the daemon gives it (deps,
 * options and their defaults, and the port `AgentPolicy`; `SessionFolders` sits beside its
 * adapter in `store/`), what it takes (`Delivery`) and what it reports (`SessionEvent`,
 * `SessionStatus`). Apart from `session-manager.ts` so that file holds behaviour only; it
 * re-exports all of these, so importers keep importing them from there.
 */
import type { AgentPort, PermissionMode } from "../agent/port.js";
import type { Envelope } from "../identity/wrap-message.js";
import type { Logger } from "../logging/logger.js";
import type { Registry, RegistryEntry } from "../store/registry.js";
import type { SessionFolders } from "../store/session-folders.js";
import type { Clock } from "../utils/clock.js";
import type { AgentSessionId, ChatId, Tier } from "../utils/ids.js";
import type { HandoffReason } from "./session-replacement.js";
import type { InContextMessage, SessionSnapshot, SessionState, TurnReply } from "./session.js";

/** What a tier allows the agent to do; the daemon derives it from config. */
export interface AgentPolicy {
  model?: string;
  allowedTools: readonly string[];
  disallowedTools: readonly string[];
  permissionMode: PermissionMode;
  systemPromptAppend?: string;
  /** Most model requests one turn may make; unset: no limit. */
  maxTurns?: number;
  /** Most US dollars one agent process may spend across its turns; unset: no limit. */
  maxBudgetUsd?: number;
}

/** Where a forgotten chat's session goes (`daemon/session-archive.ts`). */
export interface SessionArchive {
  /**
   * Forgets a chat whose session has stopped: drops its registry entry (durably), then moves its
   * folder, the CLI's data for it and dispatch's transcript copy out of every chat's reach.
   * Resolves with where they went. A forget cut short by a crash is finished at the next start.
   */
  forget(chatId: ChatId, entry: RegistryEntry): Promise<string>;
}

export interface Delivery {
  chatId: ChatId;
  /** The text as the contact wrote it; as the agent reads it when there is no `envelope`. */
  text: string;
  /** Who sent it, when and how: the session wraps the text in it for its agent. */
  envelope?: Envelope;
  contactName: string | null;
  tier: string;
  chatKind: "individual" | "group";
  channel: string;
  /** A UUID that stays the message's id across restarts (the journal's); random when unset. */
  messageId?: string;
  /**
   * The ids the caller records the message under (journal rows: one, or several that one
   * reminder stands for); the turn that answers it carries them back in `TurnReply.recordIds`.
   */
  recordIds?: readonly number[];
  /** Set when the message already stands, unanswered, in the chat's session (see the type). */
  inContext?: InContextMessage;
}

export interface SessionManagerDeps {
  agent: AgentPort;
  registry: Registry;
  folders: SessionFolders;
  archive: SessionArchive;
  clock: Clock;
  logger: Logger;
  policyFor(tier: string, chatKind: "individual" | "group"): AgentPolicy;
  /** Every finished turn, once: the daemon sends it out through the chat's channel. */
  onReply(reply: TurnReply): void;
  /** The agent's `send_message` tool: an interim message to its own chat. */
  sendInterim?(chatId: ChatId, text: string): Promise<void>;
  /**
   * The chat ids of the person a one-to-one chat belongs to, its own included, when a person's
   * handles share one session (`sessionScope: "person"`): the contact's handles, read on every
   * message (an added handle joins from its next one). Undefined, or unset: the chat is alone.
   */
  personOf?(chatId: ChatId): readonly ChatId[] | undefined;
  /**
   * What a fresh session replacing an old one should know: the recent exchanges of the old
   * one, from dispatch's own copy of its transcript.
   */
  handoffFor?(sessionId: AgentSessionId, reason: HandoffReason): Promise<string | undefined>;
  /**
   * User and assistant messages dispatch's own copy of a session's transcript holds; each
   * resume is checked against it. Without it, resumes are not checked.
   */
  copiedMessagesOf?(sessionId: AgentSessionId): Promise<number>;
  /** Told of restarts, failures, replacements and quarantines as they happen. */
  onSessionEvent?(event: SessionEvent): void;
  random?: () => number;
}

/** What happened to a chat's session, with why. */
export type SessionEvent =
  | { type: "restart"; chatId: ChatId; reason: string }
  | { type: "fail"; chatId: ChatId; cause: string }
  /** A fresh session took the old one's place; `reason` as in `previous_session_ids`. */
  | { type: "replace"; chatId: ChatId; reason: string }
  | { type: "quarantine"; chatId: ChatId; reason: string };

export interface SessionManagerOptions {
  healthCheckIntervalMs: number;
  idleTimeoutMs: number;
  /** How often idle sessions are looked for; the idle timeout itself is `idleTimeoutMs`. */
  reapCheckIntervalMs?: number;
  maxConsecutiveErrors: number;
  /** A turn running longer is interrupted, then its session restarted. */
  turnTimeoutMs?: number;
  /** Unanswered messages a chat may have before new ones are refused (`queue_full`). */
  maxQueuedPerChat?: number;
  /** More automatic restarts than this in `restartWindowMs` quarantine a chat. */
  maxRestarts?: number;
  restartWindowMs?: number;
  /** Turns a message may fail with a retriable API error (overload, rate limit) before it is given up. */
  maxMessageAttempts?: number;
  /**
   * Sessions that may hold a live agent process at once. A chat that needs one while the pool
   * is full takes the slot of the least recently used idle session (which resumes later); when
   * every session is busy, chats wait their turn in arrival order.
   */
  maxLiveSessions?: number;
  /**
   * Slots of the pool kept for chats of a tier while it holds fewer live sessions than this
   * (`tiers.<tier>.reservedLiveSessions`). Their sum must stay below `maxLiveSessions`.
   */
  reservedLiveSessions?: Readonly<Record<Tier, number>>;
  /**
   * Slots kept for chats of every tier but `unknown` (the contacts) while they hold fewer live
   * sessions than this, so strangers never take every slot. Counts toward the same sum.
   */
  reservedLiveSessionsForContacts?: number;
}

export const MANAGER_DEFAULTS = {
  turnTimeoutMs: 600_000,
  maxQueuedPerChat: 50,
  maxRestarts: 5,
  restartWindowMs: 600_000,
  maxMessageAttempts: 5,
  maxLiveSessions: Number.POSITIVE_INFINITY,
  reservedLiveSessions: {},
  reservedLiveSessionsForContacts: 0,
} as const;

export interface SessionStatus extends RegistryEntry {
  chat_id: ChatId;
  state: SessionState | "quarantined";
  live: SessionSnapshot | undefined;
  /** Messages waiting for an answer, live session or not. */
  queued: number;
}
