import { randomUUID } from "node:crypto";
import { AgentError } from "../agent/agent-error.js";
import type {
  AgentPort,
  AgentStartOptions,
  PermissionMode,
  ResumedHistory,
} from "../agent/port.js";
import { createSessionName } from "../identity/session-name.js";
import type { Logger } from "../logging/logger.js";
import type { Registry, RegistryEntry } from "../store/registry.js";
import type { Clock } from "./clock.js";
import { DispatchError, describeError } from "./errors.js";
import { diagnose, findIdle, findStuck } from "./health.js";
import { newAgentSessionId, type AgentSessionId, type ChatId, type Tier } from "./ids.js";
import { LiveSessionPool, type PoolStatus } from "./live-session-pool.js";
import { MessageLedger } from "./message-ledger.js";
import { RestartPolicy } from "./restart-policy.js";
import { judgeResume } from "./resume-check.js";
import {
  Session,
  type SessionMessage,
  type SessionSnapshot,
  type SessionState,
  type TurnReply,
} from "./session.js";

/** What a tier allows the agent to do; the daemon derives it from config. */
export interface AgentPolicy {
  model?: string;
  allowedTools: readonly string[];
  disallowedTools: readonly string[];
  permissionMode: PermissionMode;
  systemPromptAppend?: string;
}

/** Prepares a session's working folder and returns its absolute path. */
export interface SessionFolders {
  prepare(sessionName: string): Promise<string>;
}

export interface Delivery {
  chatId: ChatId;
  /** The text as the agent should see it (already wrapped with its sender header). */
  text: string;
  contactName: string | null;
  tier: string;
  chatKind: "individual" | "group";
  channel: string;
  /** A UUID that stays the message's id across restarts (the journal's); random when unset. */
  messageId?: string;
}

export interface SessionManagerDeps {
  agent: AgentPort;
  registry: Registry;
  folders: SessionFolders;
  clock: Clock;
  logger: Logger;
  policyFor(tier: string, chatKind: "individual" | "group"): AgentPolicy;
  /** Every finished turn, once: the daemon sends it out through the chat's channel. */
  onReply(reply: TurnReply): void;
  /** The agent's `send_message` tool: an interim message to its own chat. */
  sendInterim?(chatId: ChatId, text: string): Promise<void>;
  /**
   * What a fresh session replacing an old one should know: the recent exchanges of the old
   * one, from dispatch's own copy of its transcript.
   */
  handoffFor?(sessionId: AgentSessionId, reason: HandoffReason): string | undefined;
  /**
   * User and assistant messages dispatch's own copy of a session's transcript holds; each
   * resume is checked against it. Without it, resumes are not checked.
   */
  copiedMessagesOf?(sessionId: AgentSessionId): number;
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

/** Why a fresh session is told the old one's recent exchanges. */
export type HandoffReason = "context-overflow" | "history-missing";

/** A resume did not bring the session's history back; it is rebuilt from dispatch's copy. */
export const HISTORY_MISSING = "history-missing";

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
}

export const MANAGER_DEFAULTS = {
  turnTimeoutMs: 600_000,
  maxQueuedPerChat: 50,
  maxRestarts: 5,
  restartWindowMs: 600_000,
  maxMessageAttempts: 5,
  maxLiveSessions: Number.POSITIVE_INFINITY,
  reservedLiveSessions: {},
} as const;

/** The conversation no longer fits the context window, even after the CLI's own compaction. */
const CONTEXT_OVERFLOW = /prompt is too long|context (window|length)|too many tokens/i;

/** API errors the CLI already retried and gave up on, worth another try later. */
const RETRIABLE_TURN_ERROR =
  /overloaded|rate.?limit|\b(429|500|502|503|504|529)\b|timed? ?out|ECONNRESET|ECONNREFUSED|socket hang up/i;

export interface SessionStatus extends RegistryEntry {
  chat_id: ChatId;
  state: SessionState | "quarantined";
  live: SessionSnapshot | undefined;
  /** Messages waiting for an answer, live session or not. */
  queued: number;
}

/**
 * One session per chat (the seed's SDKBackend): lazy creation, resume from the registry,
 * fresh start when the agent no longer knows the id, health checks, idle reaping, and a
 * shutdown that saves every session id. Replies are matched to the messages they answer.
 */
export class SessionManager {
  private readonly sessions = new Map<ChatId, Session>();
  /** Chats whose session is being opened: a second message waits instead of opening another. */
  private readonly opening = new Map<ChatId, Promise<Session>>();
  private readonly ledger = new MessageLedger();
  private readonly restartPolicy: RestartPolicy;
  /** Chats restarted too often: their messages stay queued until an operator restarts them. */
  private readonly quarantined = new Set<ChatId>();
  /** Sessions interrupted for running past the turn timeout, and when. */
  private readonly interruptedAt = new Map<Session, number>();
  private readonly cancelTimers: (() => void)[] = [];
  private readonly settings: Required<SessionManagerOptions>;
  private readonly livePool: LiveSessionPool;
  private shuttingDown = false;
  private readonly log: Logger;

  constructor(
    private readonly deps: SessionManagerDeps,
    private readonly options: SessionManagerOptions,
  ) {
    this.log = deps.logger;
    this.settings = {
      reapCheckIntervalMs: Math.min(60_000, options.idleTimeoutMs),
      ...MANAGER_DEFAULTS,
      ...options,
    };
    this.livePool = new LiveSessionPool(
      this.settings.maxLiveSessions,
      {
        liveTiers: () => Array.from(this.sessions.keys(), (chatId) => this.tierOf(chatId)),
        tierOf: (chatId) => this.tierOf(chatId),
        leastRecentlyUsedIdle: (except, evictable) => this.leastRecentlyUsedIdle(except, evictable),
        evict: async (victim, forChat) => {
          this.log.info("session-evict", { chatId: victim, for: forChat });
          await this.stopLive(victim);
        },
      },
      new Map(Object.entries(this.settings.reservedLiveSessions)),
    );
    this.restartPolicy = new RestartPolicy({
      maxRestarts: this.settings.maxRestarts,
      windowMs: this.settings.restartWindowMs,
      ...(deps.random ? { random: deps.random } : {}),
    });
  }

  /** Loads nothing eagerly: sessions start on their chat's next message. */
  startup(): void {
    this.log.info("manager-start", { registered: this.deps.registry.size });
    const { clock } = this.deps;
    const stuckCheckMs = Math.max(
      1_000,
      Math.min(30_000, Math.floor(this.settings.turnTimeoutMs / 4)),
    );
    this.cancelTimers.push(
      clock.every(this.settings.healthCheckIntervalMs, () => void this.checkHealth()),
      clock.every(this.settings.reapCheckIntervalMs, () => void this.reapIdle()),
      clock.every(stuckCheckMs, () => void this.checkStuckTurns()),
    );
  }

  /**
   * Sends a message into its chat's session, opening or resuming it when needed; resolves with
   * the reply of the turn that answered it.
   */
  async deliver(delivery: Delivery): Promise<TurnReply> {
    const { reply } = await this.accept(delivery);
    return reply;
  }

  /**
   * Like `deliver`, but resolves as soon as the message is in its session (steering a running
   * turn, or queued for the next), with the reply still to come.
   */
  async accept(delivery: Delivery): Promise<{ messageId: string; reply: Promise<TurnReply> }> {
    const { chatId } = delivery;
    if (this.shuttingDown) {
      throw new DispatchError(
        "shutting_down",
        "dispatch is shutting down; send the message again after it restarts",
      );
    }
    if (this.ledger.countOf(chatId) >= this.settings.maxQueuedPerChat) {
      throw new DispatchError(
        "queue_full",
        `Chat ${chatId} already has ${this.settings.maxQueuedPerChat} messages waiting for an answer; send again once it has caught up`,
      );
    }
    const message: SessionMessage = { id: delivery.messageId ?? randomUUID(), text: delivery.text };
    const reply = this.ledger.add(chatId, message);
    if (this.quarantined.has(chatId)) {
      // Kept for when an operator lifts the quarantine; whoever waits hears why now.
      this.ledger.rejectWaiters(chatId, quarantinedError(chatId));
      return { messageId: message.id, reply };
    }
    let session: Session;
    try {
      session = await this.sessionFor(delivery);
    } catch (error) {
      this.ledger.fail(message.id, error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
    // A session that failed meanwhile is being replaced, and its replacement gets the message.
    if (session.accepting()) session.push(message);
    this.deps.registry.update(chatId, {
      last_message_time: new Date(this.deps.clock.now()).toISOString(),
      channel: delivery.channel,
    });
    return { messageId: message.id, reply };
  }

  /** Messages delivered and not yet answered, across all chats. */
  unansweredCount(): number {
    return this.ledger.size;
  }

  pool(): PoolStatus {
    return this.livePool.status();
  }

  /** Resolves true once every delivered message has been answered, false after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<boolean> {
    const empty = this.ledger.whenEmpty();
    let cancelTimer = () => {};
    const timedOut = new Promise<boolean>((resolve) => {
      cancelTimer = this.deps.clock.after(timeoutMs, () => resolve(false));
    });
    const drained = await Promise.race([empty.promise.then(() => true), timedOut]);
    cancelTimer();
    empty.cancel();
    return drained;
  }

  has(chatId: ChatId): boolean {
    return this.sessions.has(chatId);
  }

  status(chatId: ChatId): SessionStatus | undefined {
    const entry = this.deps.registry.get(chatId);
    if (!entry) return undefined;
    const live = this.sessions.get(chatId)?.snapshot();
    const state = this.quarantined.has(chatId) ? "quarantined" : (live?.state ?? "stopped");
    return { chat_id: chatId, ...entry, state, live, queued: this.ledger.countOf(chatId) };
  }

  list(): SessionStatus[] {
    return [...this.deps.registry.entries()].map(([chatId]) => this.status(chatId)!);
  }

  /**
   * Stops a chat's session and starts it again with resume, keeping unanswered messages. An
   * operator's restart (the default reason) also lifts a quarantine.
   */
  async restart(chatId: ChatId, reason = "requested"): Promise<void> {
    const entry = this.deps.registry.get(chatId);
    if (!entry) throw new DispatchError("not_found", `No session is registered for chat ${chatId}`);
    if (reason === "requested") {
      this.restartPolicy.reset(chatId);
      if (this.quarantined.delete(chatId)) this.log.info("session-quarantine-lift", { chatId });
    }
    await this.reopen(chatId, async () => {
      await this.stopLive(chatId);
      const updated = this.deps.registry.update(chatId, { restarts: entry.restarts + 1 });
      this.log.info("session-restart", { chatId, reason, unanswered: this.ledger.countOf(chatId) });
      this.deps.onSessionEvent?.({ type: "restart", chatId, reason });
      return this.open(chatId, updated);
    });
  }

  /** Closes a chat's session; it resumes on the chat's next message. */
  async stop(chatId: ChatId, reason = "requested"): Promise<boolean> {
    const stopped = await this.stopLive(chatId);
    if (stopped) this.log.info("session-stop", { chatId, reason });
    return stopped;
  }

  /** Stops the session and drops its registry entry: the chat starts afresh next time. */
  async forget(chatId: ChatId): Promise<boolean> {
    await this.stop(chatId, "forget");
    this.quarantined.delete(chatId);
    this.ledger.dropChat(chatId, new DispatchError("not_found", `Chat ${chatId} was forgotten`));
    const removed = this.deps.registry.remove(chatId);
    await this.deps.registry.flush();
    return removed;
  }

  /** The 5-minute check: restarts sessions whose process died, loop crashed or errors piled up. */
  async checkHealth(): Promise<void> {
    for (const [chatId, session] of [...this.sessions]) {
      const reason = diagnose(session.snapshot(), this.options.maxConsecutiveErrors);
      if (!reason || this.shuttingDown) continue;
      this.log.warn("session-unhealthy", { chatId, reason });
      await this.restartAutomatically(chatId, session, reason, 0);
    }
  }

  /**
   * Interrupts turns running past the turn timeout; a session still stuck one check later is
   * restarted. One stuck chat never holds up the others: each has its own process.
   */
  async checkStuckTurns(): Promise<void> {
    const now = this.deps.clock.now();
    for (const chatId of findStuck(this.snapshots(), now, this.settings.turnTimeoutMs)) {
      const session = this.sessions.get(chatId);
      if (!session || this.shuttingDown) continue;
      const interruptedAt = this.interruptedAt.get(session);
      if (interruptedAt === undefined) {
        this.interruptedAt.set(session, now);
        this.log.warn("turn-timeout", { chatId, timeoutMs: this.settings.turnTimeoutMs });
        await session
          .interrupt()
          .catch((error: unknown) =>
            this.log.warn("turn interrupt failed", { chatId, cause: describeError(error) }),
          );
      } else if (now > interruptedAt) {
        // The message it is stuck on is answered with an error, or the restart would only hand
        // it the same message again.
        const [stuckMessage] = this.ledger.messagesOf(chatId);
        if (stuckMessage)
          this.giveUp(
            chatId,
            stuckMessage.id,
            "The agent got stuck on this message and was restarted.",
          );
        this.log.warn("turn-stuck-restart", { chatId });
        await this.restartAutomatically(chatId, session, "turn-stuck", 0);
      }
    }
  }

  async reapIdle(): Promise<void> {
    for (const chatId of findIdle(
      this.snapshots(),
      this.deps.clock.now(),
      this.settings.idleTimeoutMs,
    )) {
      await this.stop(chatId, "idle");
      this.log.info("session-reap", { chatId });
    }
  }

  /** Saves every session id and stops every session. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    for (const cancel of this.cancelTimers.splice(0)) cancel();
    this.livePool.close();
    await Promise.allSettled([...this.opening.values()]);
    await Promise.all([...this.sessions.keys()].map((chatId) => this.stop(chatId, "shutdown")));
    await this.deps.registry.flush();
    this.ledger.dropAll(
      new DispatchError("shutting_down", "dispatch shut down before this message was answered"),
    );
    this.log.info("manager-stop", {});
  }

  private snapshots(): (readonly [ChatId, SessionSnapshot])[] {
    return [...this.sessions].map(([chatId, session]) => [chatId, session.snapshot()] as const);
  }

  private sessionFor(delivery: Delivery): Promise<Session> {
    const existing = this.sessions.get(delivery.chatId);
    if (existing?.accepting() && !this.opening.has(delivery.chatId))
      return Promise.resolve(existing);
    return this.reopen(delivery.chatId, async () => {
      await this.stopLive(delivery.chatId);
      const { entry, isNew } = this.registerChat(delivery);
      // The session id must be durable before the agent can produce a first reply.
      await this.deps.registry.flush();
      return this.open(delivery.chatId, entry, !isNew);
    });
  }

  /**
   * Runs `work` to (re)open a chat's session unless that is already under way; everyone asking
   * meanwhile gets the same session, so a chat never has two.
   */
  private reopen(chatId: ChatId, work: () => Promise<Session>): Promise<Session> {
    const pending = this.opening.get(chatId);
    if (pending) return pending;
    const opening = work().finally(() => this.opening.delete(chatId));
    this.opening.set(chatId, opening);
    return opening;
  }

  private async stopLive(chatId: ChatId): Promise<boolean> {
    const session = this.sessions.get(chatId);
    if (!session) return false;
    this.sessions.delete(chatId);
    await session.stop();
    this.saveSessionId(chatId, session.snapshot().agentSessionId);
    this.livePool.wake();
    return true;
  }

  private tierOf(chatId: ChatId): Tier {
    return this.deps.registry.get(chatId)?.tier ?? "unknown";
  }

  private leastRecentlyUsedIdle(
    except: ChatId,
    evictable: (chatId: ChatId) => boolean,
  ): ChatId | undefined {
    let oldest: { chatId: ChatId; lastActivityMs: number } | undefined;
    for (const [chatId, session] of this.sessions) {
      if (chatId === except || this.opening.has(chatId) || !evictable(chatId)) continue;
      const snapshot = session.snapshot();
      if (snapshot.state !== "idle" || snapshot.unanswered > 0 || this.ledger.countOf(chatId) > 0)
        continue;
      if (!oldest || snapshot.lastActivityMs < oldest.lastActivityMs)
        oldest = { chatId, lastActivityMs: snapshot.lastActivityMs };
    }
    return oldest?.chatId;
  }

  /** The chat's registry entry, created on its first message; contact and tier kept current. */
  private registerChat(delivery: Delivery): { entry: RegistryEntry; isNew: boolean } {
    const { registry } = this.deps;
    const existing = registry.get(delivery.chatId);
    if (existing) {
      const entry = registry.update(delivery.chatId, {
        contact_name: delivery.contactName ?? existing.contact_name,
        tier: delivery.tier,
        session_id: existing.session_id ?? newAgentSessionId(),
      });
      return { entry, isNew: existing.session_id === null };
    }
    const entry: RegistryEntry = {
      session_name: createSessionName(delivery.contactName ?? delivery.chatId, (name) =>
        registry.isNameTaken(name),
      ),
      contact_name: delivery.contactName,
      tier: delivery.tier,
      session_id: newAgentSessionId(),
      created_at: new Date(this.deps.clock.now()).toISOString(),
      last_message_time: null,
      chat_kind: delivery.chatKind,
      channel: delivery.channel,
      previous_session_ids: [],
      turns: 0,
      errors: 0,
      restarts: 0,
    };
    registry.set(delivery.chatId, entry);
    this.log.info("session-register", { chatId: delivery.chatId, sessionName: entry.session_name });
    return { entry, isNew: true };
  }

  /**
   * Starts a session for a registered chat, resuming its id unless it is new. When the agent
   * turns out not to know the id, `replaceUnknownSession` starts a fresh one.
   */
  private async open(
    chatId: ChatId,
    entry: RegistryEntry,
    resume = true,
    handoff?: string,
  ): Promise<Session> {
    await this.livePool.acquire(chatId, entry.tier);
    try {
      return await this.startSession(chatId, entry, resume, handoff);
    } finally {
      this.livePool.release(entry.tier);
    }
  }

  private async startSession(
    chatId: ChatId,
    entry: RegistryEntry,
    resume: boolean,
    handoff: string | undefined,
  ): Promise<Session> {
    const cwd = await this.deps.folders.prepare(entry.session_name);
    const sessionId = entry.session_id ?? newAgentSessionId();
    const log = this.log.child({ chatId, sessionName: entry.session_name });
    const session: Session = new Session(
      { agent: this.deps.agent, clock: this.deps.clock, logger: log },
      { chatId, agentOptions: this.agentOptions(chatId, entry, cwd, sessionId, resume) },
      {
        onSessionId: (id) => this.saveSessionIdDurably(chatId, id),
        onTurn: (reply) => this.handleTurn(reply),
        onExit: (error) => this.handleExit(chatId, session, error),
        // After each resume, before any message reaches it: the history must have come back.
        onResumed: (history) => !this.rebuildIfMissing(chatId, session, sessionId, history),
      },
    );
    this.sessions.set(chatId, session);
    session.start();
    log.info(resume ? "session-resume" : "session-start", { agentSessionId: sessionId, cwd });
    if (handoff) session.pushContext(handoff);
    for (const message of this.ledger.messagesOf(chatId)) session.push(message);
    return session;
  }

  private agentOptions(
    chatId: ChatId,
    entry: RegistryEntry,
    cwd: string,
    sessionId: AgentSessionId,
    resume: boolean,
  ): AgentStartOptions {
    const policy = this.deps.policyFor(entry.tier, entry.chat_kind);
    const { deps } = this;
    return {
      cwd,
      sessionId,
      resume,
      allowedTools: policy.allowedTools,
      disallowedTools: policy.disallowedTools,
      permissionMode: policy.permissionMode,
      ...(policy.model ? { model: policy.model } : {}),
      ...(policy.systemPromptAppend ? { systemPromptAppend: policy.systemPromptAppend } : {}),
      ...(deps.sendInterim
        ? { chatTools: { sendMessage: (text: string) => deps.sendInterim!(chatId, text) } }
        : {}),
      logFields: { chatId, sessionName: entry.session_name },
    };
  }

  private handleTurn(turn: TurnReply): void {
    let reply = turn;
    const { registry } = this.deps;
    const entry = registry.get(reply.chatId);
    if (entry) {
      registry.update(reply.chatId, {
        turns: entry.turns + 1,
        errors: entry.errors + (reply.isError ? 1 : 0),
        session_id: reply.agentSessionId,
      });
    }
    if (reply.internal) {
      this.log.info("session-context-turn", { chatId: reply.chatId, isError: reply.isError });
      return;
    }
    if (reply.isError && RETRIABLE_TURN_ERROR.test(reply.errorText ?? "")) {
      this.retryLater(reply);
      return;
    }
    if (reply.isError && CONTEXT_OVERFLOW.test(reply.errorText ?? "")) {
      // Each message gets one fresh session; overflowing that too, its error is the answer.
      const retry = reply.messageIds.filter((id) => this.ledger.recordFailure(id) === 1);
      if (retry.length > 0) {
        void this.replaceSession(reply.chatId, "context overflow", reply.agentSessionId);
        const givenUp = reply.messageIds.filter((id) => !retry.includes(id));
        if (givenUp.length === 0) return;
        reply = { ...reply, messageIds: givenUp };
      }
    }
    if (!reply.isError) this.restartPolicy.succeeded(reply.chatId);
    this.ledger.settle(reply.messageIds, reply);
    if (this.livePool.waiting > 0 && this.ledger.countOf(reply.chatId) === 0) this.livePool.wake();
    try {
      this.deps.onReply(reply);
    } catch (error) {
      this.log.error("reply handler failed", { chatId: reply.chatId, cause: describeError(error) });
    }
  }

  /**
   * The API failed the turn (overloaded, rate limited) after the CLI's own retries: the messages
   * stay queued and are pushed again after a backoff, up to `maxMessageAttempts` turns.
   */
  private retryLater(reply: TurnReply): void {
    const { chatId } = reply;
    const retry: string[] = [];
    for (const id of reply.messageIds) {
      if (this.ledger.recordFailure(id) < this.settings.maxMessageAttempts) retry.push(id);
    }
    const givenUp = reply.messageIds.filter((id) => !retry.includes(id));
    if (givenUp.length > 0) {
      this.log.error("message-give-up", {
        chatId,
        attempts: this.settings.maxMessageAttempts,
        error: reply.errorText,
      });
      this.ledger.settle(givenUp, reply);
      this.deps.onReply({ ...reply, messageIds: givenUp });
    }
    if (retry.length === 0) return;
    const decision = this.restartPolicy.next(chatId, this.deps.clock.now());
    const delayMs =
      decision.action === "restart" ? decision.delayMs : this.settings.restartWindowMs;
    this.log.warn("turn-retry-scheduled", {
      chatId,
      messages: retry.length,
      delayMs,
      error: reply.errorText,
    });
    this.deps.clock.after(delayMs, () => {
      const session = this.sessions.get(chatId);
      if (!session?.accepting() || this.shuttingDown) return; // a reopened session gets them anyway
      for (const message of this.ledger.messagesOf(chatId)) {
        if (retry.includes(message.id)) session.push(message);
      }
    });
  }

  /** Answers a message with an error of dispatch's own, through the normal reply path. */
  private giveUp(chatId: ChatId, messageId: string, errorText: string): void {
    const sessionId = this.deps.registry.get(chatId)?.session_id;
    if (!sessionId) return;
    const reply: TurnReply = {
      chatId,
      agentSessionId: sessionId,
      messageIds: [messageId],
      text: "",
      isError: true,
      errorText,
      totalCostUsd: 0,
      durationMs: 0,
    };
    this.log.error("message-give-up", { chatId, error: errorText });
    this.ledger.settle(reply.messageIds, reply);
    this.deps.onReply(reply);
  }

  /** The receive loop ended by itself. Unanswered messages are carried into the next session. */
  private handleExit(chatId: ChatId, session: Session, error: unknown): void {
    if (this.sessions.get(chatId) !== session || this.shuttingDown) return;
    this.deps.onSessionEvent?.({ type: "fail", chatId, cause: describeError(error) });
    if (error instanceof AgentError && error.code === "agent_session_not_found") {
      // The agent found no transcript at all; rebuild from ours when we hold one.
      const sessionId = session.snapshot().agentSessionId;
      if (!this.rebuildIfMissing(chatId, session, sessionId, { messages: 0 }))
        void this.replaceSession(chatId, "unknown to the agent");
      return;
    }
    if (this.ledger.countOf(chatId) === 0) return; // the health check restarts it
    void this.restartAutomatically(chatId, session, `crashed: ${describeError(error)}`);
  }

  /**
   * A restart the daemon decides on its own (crash, health check, stuck turn): after a backoff,
   * unless the chat has been restarted too often lately, in which case it is quarantined.
   * `delayMs` overrides the backoff (the health check restarts at once).
   */
  private async restartAutomatically(
    chatId: ChatId,
    session: Session,
    reason: string,
    delayMs?: number,
  ): Promise<void> {
    const decision = this.restartPolicy.next(chatId, this.deps.clock.now());
    if (decision.action === "quarantine") {
      await this.quarantine(chatId, decision.restarts, reason);
      return;
    }
    const wait = delayMs ?? decision.delayMs;
    this.log.warn("session-restart-scheduled", {
      chatId,
      reason,
      attempt: decision.attempt,
      delayMs: wait,
    });
    await new Promise<void>((resolve) => this.deps.clock.after(wait, resolve));
    if (this.sessions.get(chatId) !== session || this.shuttingDown) return;
    await this.restart(chatId, reason).catch((cause: unknown) =>
      this.log.error("session restart failed", { chatId, cause: describeError(cause) }),
    );
  }

  private async quarantine(chatId: ChatId, restarts: number, reason: string): Promise<void> {
    this.quarantined.add(chatId);
    this.deps.onSessionEvent?.({ type: "quarantine", chatId, reason });
    this.log.error("session-quarantine", {
      chatId,
      restarts,
      reason,
      queued: this.ledger.countOf(chatId),
      fix: `find the cause in the log, then run: dispatch sessions restart ${chatId}`,
    });
    await this.stopLive(chatId);
    this.ledger.rejectWaiters(chatId, quarantinedError(chatId));
  }

  /**
   * Replaces the session with a fresh one told the recent exchanges from dispatch's copy when
   * the agent resumed with fewer messages than that copy holds. Returns whether it did.
   */
  private rebuildIfMissing(
    chatId: ChatId,
    session: Session,
    sessionId: AgentSessionId,
    history: ResumedHistory,
  ): boolean {
    let copied: number | undefined;
    try {
      copied = this.deps.copiedMessagesOf?.(sessionId);
    } catch (error) {
      this.log.warn("session resume check failed", { chatId, cause: describeError(error) });
    }
    if (copied === undefined) return false;
    const verdict = judgeResume({ copied, restored: history.messages });
    if (verdict.intact) {
      this.log.debug("session-resume-check", { chatId, sessionId, copied, ...history });
      return false;
    }
    this.log.warn("session-history-missing", {
      chatId,
      sessionId,
      copied,
      restored: history.messages,
      fix: "rebuilding the session from dispatch's copy of its transcript",
    });
    // After the open under way (this session's own) has finished, unless another took its place.
    const opening = this.opening.get(chatId) ?? Promise.resolve(session);
    void opening
      .catch(() => undefined)
      .then(() => {
        if (this.sessions.get(chatId) !== session || this.shuttingDown) return;
        return this.replaceSession(chatId, HISTORY_MISSING, sessionId);
      });
    return true;
  }

  /**
   * Starts the chat afresh under a new session id, keeping the old one in the entry's history
   * and losing no message: when the agent lost the transcript ("unknown to the agent"), or the
   * conversation overflowed the context window, in which case the fresh session is first told
   * the recent exchanges (`handoffFor`).
   */
  private async replaceSession(
    chatId: ChatId,
    reason: string,
    handoffFrom?: AgentSessionId,
  ): Promise<void> {
    try {
      await this.reopen(chatId, async () => {
        await this.stopLive(chatId);
        const entry = this.deps.registry.get(chatId);
        if (!entry) throw new DispatchError("not_found", `Chat ${chatId} was forgotten meanwhile`);
        const oldId = entry.session_id;
        const newId = newAgentSessionId();
        const replacedAt = new Date(this.deps.clock.now()).toISOString();
        const updated = this.deps.registry.update(chatId, {
          session_id: newId,
          previous_session_ids: [
            ...entry.previous_session_ids,
            ...(oldId ? [{ session_id: oldId, replaced_at: replacedAt, reason }] : []),
          ],
        });
        await this.deps.registry.flush();
        this.log.warn(
          reason === "unknown to the agent" ? "session-resume-unknown" : "session-replace",
          {
            chatId,
            reason,
            oldSessionId: oldId,
            newSessionId: newId,
          },
        );
        this.deps.onSessionEvent?.({ type: "replace", chatId, reason });
        const handoff = handoffFrom
          ? this.deps.handoffFor?.(
              handoffFrom,
              reason === HISTORY_MISSING ? "history-missing" : "context-overflow",
            )
          : undefined;
        return this.open(chatId, updated, false, handoff);
      });
    } catch (error) {
      this.log.error("fresh session failed", { chatId, reason, cause: describeError(error) });
    }
  }

  private saveSessionId(chatId: ChatId, sessionId: AgentSessionId): void {
    if (this.deps.registry.get(chatId))
      this.deps.registry.update(chatId, { session_id: sessionId });
  }

  private async saveSessionIdDurably(chatId: ChatId, sessionId: AgentSessionId): Promise<void> {
    if (this.deps.registry.get(chatId)?.session_id === sessionId) return;
    this.saveSessionId(chatId, sessionId);
    await this.deps.registry.flush();
  }
}

function quarantinedError(chatId: ChatId): DispatchError {
  return new DispatchError(
    "quarantined",
    `Chat ${chatId} is quarantined after repeated failures; its messages stay queued. ` +
      `Check the log, then run \`dispatch sessions restart ${chatId}\` to try again.`,
  );
}
