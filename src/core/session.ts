import { randomUUID } from "node:crypto";
import type {
  AgentConversation,
  AgentEvent,
  AgentPort,
  AgentStartOptions,
  ResumedHistory,
  TurnLimit,
} from "../agent/port.js";
import {
  createEnvelopeWriter,
  type Envelope,
  type EnvelopeWriter,
} from "../identity/wrap-message.js";
import type { Logger } from "../logging/logger.js";
import type { Clock } from "../utils/clock.js";
import { describeError } from "../utils/errors.js";
import type { AgentSessionId, ChatId } from "../utils/ids.js";
import { costBaseline, type CostReading, type TurnCostReport } from "./turn-cost.js";

export type SessionState = "starting" | "idle" | "busy" | "stopping" | "stopped" | "failed";

/** A message on its way into a session: `id` is a UUID the agent reports back per turn. */
export interface SessionMessage {
  id: string;
  /** What the agent reads; with an `envelope`, the contact's own words, wrapped at hand-over. */
  text: string;
  /**
   * Who sent it, when and how: each hand-over wraps the text in it, saying only what this
   * session's conversation has not heard yet (`identity/wrap-message.ts`).
   */
  envelope?: Envelope;
  /** Already in one session's context, unanswered (`InContextMessage`). */
  inContext?: InContextMessage;
}

/**
 * A message that already stands in the conversation of agent session `sessionId`, unanswered: it
 * reached the transcript before a crash. That session is given `reminder`, which asks for the
 * answer without repeating the message (its context would hold it twice); any other session,
 * which never saw it, is given the message's `text`.
 */
export interface InContextMessage {
  sessionId: AgentSessionId;
  reminder: string;
}

/** What one turn of the agent produced, and which messages it answered. */
export interface TurnReply {
  chatId: ChatId;
  agentSessionId: AgentSessionId;
  /** Ids of the messages this turn consumed (several when messages were steered or merged). */
  messageIds: string[];
  /**
   * The record ids those messages were delivered with (`Delivery.recordIds`: the journal's),
   * set by the ledger when it settles them; empty for messages delivered without.
   */
  recordIds?: number[];
  /**
   * The chat and channel the reply goes back to: those of the latest message it answers (a
   * person's session hears from several handles), set by the ledger. Unset: `chatId`'s own.
   */
  replyTo?: { chatId: ChatId; channel: string };
  /** The turn's top-level assistant text, blocks joined by blank lines. */
  text: string;
  /** A turn that answered only dispatch's own context input: its text goes to nobody. */
  internal?: boolean;
  isError: boolean;
  errorText?: string;
  /** The tier's limit that stopped the turn (`turn-limit.ts` says what the contact is told). */
  limit?: TurnLimit;
  totalCostUsd: number;
  /** What the turn tells about its own cost (`turn-cost.ts`); absent for replies of dispatch's own. */
  cost?: TurnCostReport;
  durationMs: number;
}

export interface SessionHandlers {
  /** Awaited before any reply of the session is released, so the id is durable first. */
  onSessionId(sessionId: AgentSessionId): Promise<void>;
  onTurn(reply: TurnReply): void;
  /** The receive loop ended on its own: the process exited or its stream broke. */
  onExit(error: unknown): void;
  /**
   * What a resumed conversation came back with, before any message reaches it: true lets the
   * messages through; false keeps them back, because the session is being replaced. Messages
   * pushed while it decides are held too.
   */
  onResumed?(history: ResumedHistory): Promise<boolean>;
}

export interface SessionSpec {
  chatId: ChatId;
  agentOptions: AgentStartOptions;
}

export interface SessionSnapshot {
  state: SessionState;
  agentSessionId: AgentSessionId;
  turns: number;
  consecutiveErrors: number;
  lastActivityMs: number;
  /** When the oldest unanswered message was pushed; undefined when none is waiting. */
  busySinceMs: number | undefined;
  unanswered: number;
  pid: number | undefined;
  processAlive: boolean;
  loopCrashed: boolean;
  totalCostUsd: number;
}

/**
 * One chat's long-lived agent conversation: messages are pushed straight into the running
 * conversation (a message that arrives mid-turn steers it), and a single receive loop turns the
 * agent's events into one reply per turn. Unanswered messages are kept until a turn reports
 * them consumed, so a crash loses nothing: the manager re-pushes them into the next session.
 */
export class Session {
  readonly chatId: ChatId;
  private readonly log: Logger;
  private conversation: AgentConversation | undefined;
  private receiveLoop: Promise<void> | undefined;
  private currentState: SessionState = "starting";
  private agentSessionId: AgentSessionId;
  private readonly unanswered = new Map<string, { message: SessionMessage; pushedAtMs: number }>();
  private turnText: string[] = [];
  private turns = 0;
  private consecutiveErrors = 0;
  private totalCostUsd = 0;
  /** What the next turn's cost is measured from; null until this process has ended a turn. */
  private costStart: CostReading | null = null;
  private lastActivityMs: number;
  private loopCrashed = false;
  /** Inputs of dispatch's own (`pushContext`), whose turns answer no contact. */
  private readonly internalInputs = new Set<string>();
  /** Messages held back while a context turn runs, or until a resume is checked. */
  private held: SessionMessage[] | undefined;
  private checkingResume = false;
  /**
   * Input ids this conversation has been given, and the message each carried. The CLI ignores
   * an input whose id it has seen, so a message pushed again after a failed turn goes in under
   * a new id.
   */
  private readonly messageOfInput = new Map<string, string>();
  /** What this conversation has been told of senders: a new session, or a compaction, tells all. */
  private readonly envelopes: EnvelopeWriter = createEnvelopeWriter();

  constructor(
    private readonly deps: { agent: AgentPort; clock: Clock; logger: Logger },
    private readonly spec: SessionSpec,
    private readonly handlers: SessionHandlers,
  ) {
    this.chatId = spec.chatId;
    this.agentSessionId = spec.agentOptions.sessionId;
    this.log = deps.logger;
    this.lastActivityMs = deps.clock.now();
  }

  get state(): SessionState {
    return this.currentState;
  }

  start(): void {
    if (this.conversation) throw new Error("Session.start called twice");
    this.conversation = this.deps.agent.start({
      ...this.spec.agentOptions,
      // A message handed over before a compaction may be read after the summary, lean.
      afterCompaction: () => this.envelopes.recap(),
    });
    this.currentState = "idle";
    this.receiveLoop = this.receive(this.conversation);
    if (this.conversation.resumed) this.holdUntilResumed(this.conversation.resumed);
  }

  push(message: SessionMessage): void {
    if (!this.conversation || !this.accepting()) {
      throw new Error(
        `Session for ${this.chatId} is ${this.currentState}; it cannot take messages`,
      );
    }
    if (this.unanswered.has(message.id)) return;
    const now = this.deps.clock.now();
    this.unanswered.set(message.id, { message, pushedAtMs: now });
    this.lastActivityMs = now;
    this.currentState = "busy";
    if (this.held) this.held.push(message);
    else this.send(message);
  }

  accepting(): boolean {
    return this.currentState === "idle" || this.currentState === "busy";
  }

  snapshot(): SessionSnapshot {
    const oldest = this.unanswered.values().next().value;
    return {
      state: this.currentState,
      agentSessionId: this.agentSessionId,
      turns: this.turns,
      consecutiveErrors: this.consecutiveErrors,
      lastActivityMs: this.lastActivityMs,
      busySinceMs: oldest?.pushedAtMs,
      unanswered: this.unanswered.size,
      pid: this.conversation?.pid,
      processAlive: this.conversation?.isAlive() ?? false,
      loopCrashed: this.loopCrashed,
      totalCostUsd: this.totalCostUsd,
    };
  }

  /**
   * Gives the agent text it should know (a handoff). It runs as a turn of its own, so it stays
   * in the transcript, but that turn is `internal`: its reply goes to nobody.
   */
  pushContext(text: string): void {
    const id = randomUUID();
    this.internalInputs.add(id);
    // Messages wait until the context turn is over: merged into it, they would share its fate.
    this.held ??= [];
    this.conversation?.push({ id, text });
  }

  /** Asks the agent to stop the running turn (it ends with an error result). */
  async interrupt(): Promise<void> {
    await this.conversation?.interrupt();
  }

  /** Ends the conversation and its process; resolves when the receive loop has finished. */
  async stop(): Promise<void> {
    if (this.currentState === "stopped") return;
    const wasFailed = this.currentState === "failed";
    this.currentState = "stopping";
    try {
      await this.conversation?.close();
      await this.receiveLoop;
    } finally {
      this.currentState = wasFailed ? "failed" : "stopped";
    }
  }

  private async receive(conversation: AgentConversation): Promise<void> {
    try {
      for await (const event of conversation.events) {
        await this.handle(event);
      }
      if (this.currentState !== "stopping") {
        throw new Error("the agent's event stream ended without a stop");
      }
    } catch (error) {
      if (this.currentState === "stopping") {
        this.log.debug("session-receive-loop-end", { cause: describeError(error) });
        return;
      }
      this.loopCrashed = true;
      this.currentState = "failed";
      this.log.warn("session-fail", { cause: describeError(error) });
      this.handlers.onExit(error);
    }
  }

  private async handle(event: AgentEvent): Promise<void> {
    switch (event.type) {
      case "init":
        if (event.sessionId !== this.agentSessionId) {
          this.log.info("session-id-change", { from: this.agentSessionId, to: event.sessionId });
        }
        this.agentSessionId = event.sessionId;
        await this.handlers.onSessionId(event.sessionId);
        return;
      case "text":
        this.turnText.push(event.text);
        return;
      case "turn-end":
        this.endTurn(event);
        return;
      case "compact":
        // The envelopes it read are a summary now: the next one says everything again.
        this.envelopes.forget();
        this.log.info("session-compact", { agentSessionId: this.agentSessionId });
        return;
    }
  }

  private endTurn(event: Extract<AgentEvent, { type: "turn-end" }>): void {
    const internal =
      event.inputIds.length > 0 && event.inputIds.every((id) => this.internalInputs.has(id));
    for (const id of event.inputIds) this.internalInputs.delete(id);
    const messageIds = internal ? [] : this.consumedBy(event.inputIds, event.isError);
    if (internal) this.releaseHeld();
    for (const id of messageIds) this.unanswered.delete(id);
    // A failed turn's messages may be pushed again (the manager retries them): keep their ids.
    if (!event.isError) this.forgetInputs(event.inputIds, messageIds);
    this.turns += 1;
    this.consecutiveErrors = event.isError ? this.consecutiveErrors + 1 : 0;
    this.totalCostUsd = event.totalCostUsd;
    const reading: CostReading = {
      totalUsd: event.totalCostUsd,
      totalTokens: event.tokens?.total ?? null,
    };
    const cost: TurnCostReport = {
      ...reading,
      turnTokens: event.tokens?.turn ?? null,
      resumed: this.spec.agentOptions.resume,
      previous: this.costStart,
    };
    this.costStart = costBaseline(this.costStart, reading);
    this.lastActivityMs = this.deps.clock.now();
    if (this.currentState === "busy" && this.unanswered.size === 0) this.currentState = "idle";
    const text = this.turnText.join("\n\n").trim();
    this.turnText = [];
    this.handlers.onTurn({
      chatId: this.chatId,
      agentSessionId: event.sessionId,
      messageIds,
      text,
      ...(internal ? { internal } : {}),
      isError: event.isError,
      ...(event.errorText !== undefined ? { errorText: event.errorText } : {}),
      ...(event.limit ? { limit: event.limit } : {}),
      totalCostUsd: event.totalCostUsd,
      cost,
      durationMs: event.durationMs,
    });
  }

  private send(message: SessionMessage): void {
    const inputId = this.messageOfInput.has(message.id) ? randomUUID() : message.id;
    this.messageOfInput.set(inputId, message.id);
    const { inContext } = message;
    // dispatch's own reminder goes bare; a contact's text goes in its envelope.
    const text =
      inContext?.sessionId === this.agentSessionId
        ? inContext.reminder
        : message.envelope
          ? this.envelopes.wrap(message.text, message.envelope)
          : message.text;
    this.conversation?.push({ id: inputId, text });
  }

  /** An answered message is never pushed again: its input ids need not be remembered. */
  private forgetInputs(inputIds: readonly string[], answered: readonly string[]): void {
    if (answered.length === 0) return;
    const done = new Set(answered);
    for (const id of inputIds) {
      if (done.has(this.messageOfInput.get(id) ?? id)) this.messageOfInput.delete(id);
    }
    for (const id of done) this.messageOfInput.delete(id);
  }

  /** Holds messages until the resumed conversation is known to have its history back. */
  private holdUntilResumed(resumed: Promise<ResumedHistory | undefined>): void {
    this.held ??= [];
    this.checkingResume = true;
    const decide = async (history: ResumedHistory | undefined): Promise<void> => {
      const release =
        history === undefined || !this.accepting() || (await this.handlers.onResumed?.(history));
      this.checkingResume = false;
      if (!this.accepting()) return;
      if (release ?? true) this.releaseHeld();
    };
    resumed.then(decide).catch((error: unknown) => {
      this.log.warn("session-resume-check-failed", { cause: describeError(error) });
      this.checkingResume = false;
      this.releaseHeld();
    });
  }

  private releaseHeld(): void {
    if (!this.held || this.checkingResume || this.internalInputs.size > 0) return;
    const held = this.held;
    this.held = undefined;
    for (const message of held) this.send(message);
  }

  /**
   * The messages a turn answered. The CLI names them (`user_message_uuids`); when it does not,
   * the oldest unanswered message is the best guess, since turns run in order. An error turn
   * that names none (a startup failure) answers nothing: its messages stay for the retry.
   */
  private consumedBy(inputIds: readonly string[], isError: boolean): string[] {
    const known = inputIds
      .map((id) => this.messageOfInput.get(id) ?? id)
      .filter((id) => this.unanswered.has(id));
    if (known.length > 0 || isError) return known;
    const oldest = this.unanswered.keys().next().value;
    return oldest === undefined ? [] : [oldest];
  }
}
