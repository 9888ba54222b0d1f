import type { AgentSessionId } from "../utils/ids.js";

/**
 * The agent as the core sees it: one long-lived conversation per chat, fed by `push`, read
 * through a single stream of events. The Claude Agent SDK adapter implements it; unit tests use
 * a fake. No SDK type crosses this boundary.
 */
export interface AgentPort {
  start(options: AgentStartOptions): AgentConversation;
}

export type PermissionMode = "default" | "acceptEdits" | "plan" | "dontAsk";

export interface AgentStartOptions {
  cwd: string;
  /** For a new conversation: the id it will carry. For a resume: the id to resume. */
  sessionId: AgentSessionId;
  resume: boolean;
  model?: string;
  systemPromptAppend?: string;
  allowedTools: readonly string[];
  disallowedTools: readonly string[];
  permissionMode: PermissionMode;
  /** Most model requests one turn may make (a turn that reaches it ends with `limit: "turns"`). */
  maxTurns?: number;
  /**
   * Most US dollars the agent process may spend, counted from its start across its turns (a
   * turn that reaches it ends with `limit: "spend"`, and so does every later turn of the process).
   */
  maxBudgetUsd?: number;
  /** Tools served in-process for this conversation only (for example `send_message`). */
  chatTools?: ChatTools;
  /**
   * Told to the agent as the CLI compacts its context (asked for then), with the summary: what
   * it must not lose to it. Undefined or no text: nothing is added.
   */
  afterCompaction?: () => string | undefined;
  /** Fields added to every log line the adapter writes for this conversation. */
  logFields?: Record<string, unknown>;
}

/** In-process tools bound to one chat: the agent can only ever reach its own chat with them. */
export interface ChatTools {
  sendMessage(text: string): Promise<void>;
}

export interface AgentInput {
  /** A UUID; the turn that consumes this input reports it back in `inputIds`. */
  id: string;
  text: string;
}

/** A limit of the conversation's that stopped a turn. */
export type TurnLimit = "turns" | "spend";

export type AgentEvent =
  | { type: "init"; sessionId: AgentSessionId }
  /**
   * The agent compacted its context: what it read before is a summary now. Reported after the
   * fact; an input pushed before it may already have been read after the summary.
   */
  | { type: "compact" }
  /** A top-level assistant text block (not from a subagent or a tool). */
  | { type: "text"; text: string }
  | {
      type: "turn-end";
      sessionId: AgentSessionId;
      /** Inputs this turn consumed; empty when the CLI did not say. */
      inputIds: string[];
      isError: boolean;
      errorText?: string;
      /** Set when the turn was stopped by `maxTurns` or `maxBudgetUsd`; it is then an error too. */
      limit?: TurnLimit;
      /**
       * Running cost of the process in USD, not this turn's: a resumed session starts from the
       * total its transcript saved (`core/turn-cost.ts` tells a turn's own cost from it).
       */
      totalCostUsd: number;
      /** Tokens: this turn's main loop, and the running total behind `totalCostUsd`. */
      tokens?: { turn: number; total: number };
      durationMs: number;
    };

export interface AgentConversation {
  /** Streams a message into the conversation; during a running turn it steers that turn. */
  push(input: AgentInput): void;
  /**
   * The conversation's events, for exactly one consumer. Ends when the conversation is closed;
   * throws an `AgentError` when the process fails.
   */
  readonly events: AsyncIterable<AgentEvent>;
  /**
   * For a resume: what the agent resumed with, known before it reads its first input. It
   * resolves undefined when that cannot be told (the process failed before it started).
   * Absent for a new conversation.
   */
  readonly resumed?: Promise<ResumedHistory | undefined>;
  /** Whether the agent's process is still running. */
  isAlive(): boolean;
  readonly pid: number | undefined;
  interrupt(): Promise<void>;
  /** Ends the conversation and its process tree; resolves once the process has exited. */
  close(): Promise<void>;
}

/**
 * How much conversation a resumed agent holds. The SDK cannot say whether a resume brought the
 * history back; dispatch compares this with its own copy of the transcript.
 */
export interface ResumedHistory {
  /** User and assistant messages in the transcript the agent resumed from; 0 when it found none. */
  messages: number;
}
