import { randomUUID } from "node:crypto";
import { AgentError } from "../agent/agent-error.js";
import type { Logger } from "../logging/logger.js";
import type { RegistryEntry } from "../store/registry.js";
import { DispatchError, describeError } from "../utils/errors.js";
import { findIdle } from "./health.js";
import {
  UNKNOWN_TIER,
  newAgentSessionId,
  type AgentSessionId,
  type ChatId,
  type Tier,
} from "../utils/ids.js";
import { LiveSessionPool, type PoolStatus } from "./live-session-pool.js";
import { MessageLedger } from "./message-ledger.js";
import {
  MANAGER_DEFAULTS,
  type Delivery,
  type SessionManagerDeps,
  type SessionManagerOptions,
  type SessionStatus,
} from "./session-manager-types.js";
import {
  createSessionReplacer,
  type ReplaceableSessions,
  type SessionReplacer,
} from "./session-replacement.js";
import { agentStartOptions, newRegistryEntry } from "./session-setup.js";
import {
  SessionSupervisor,
  quarantinedError,
  type SupervisedSessions,
} from "./session-supervisor.js";
import { Session, type SessionMessage, type SessionSnapshot, type TurnReply } from "./session.js";
import { classifyTurnFailure } from "./turn-failure.js";
import { replyAfterLimit } from "./turn-limit.js";

export {
  MANAGER_DEFAULTS,
  type AgentPolicy,
  type Delivery,
  type SessionArchive,
  type SessionEvent,
  type SessionManagerDeps,
  type SessionManagerOptions,
  type SessionStatus,
} from "./session-manager-types.js";
export { HISTORY_MISSING, type HandoffReason } from "./session-replacement.js";

/**
 * One session per chat (the seed's SDKBackend): lazy creation, resume from the registry, idle
 * reaping, the live-session pool, and a shutdown that saves every session id. Replies are
 * matched to the messages they answer. Restarts it decides on its own are the supervisor's
 * (`session-supervisor.ts`); fresh sessions in an old one's place are the replacer's
 * (`session-replacement.ts`).
 */
export class SessionManager {
  private readonly sessions = new Map<ChatId, Session>();
  /** Chats whose session is being opened: a second message waits instead of opening another. */
  private readonly opening = new Map<ChatId, Promise<Session>>();
  /** Chats being forgotten: their next message waits, then starts afresh. Never rejects. */
  private readonly forgetting = new Map<ChatId, Promise<void>>();
  private readonly ledger = new MessageLedger();
  private readonly supervisor: SessionSupervisor;
  private readonly replacer: SessionReplacer;
  private readonly cancelTimers: (() => void)[] = [];
  private readonly settings: Required<SessionManagerOptions>;
  private readonly livePool: LiveSessionPool;
  private shuttingDown = false;
  private readonly log: Logger;

  constructor(
    private readonly deps: SessionManagerDeps,
    options: SessionManagerOptions,
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
      [
        ...Object.entries(this.settings.reservedLiveSessions).map(([reserved, slots]) => ({
          slots,
          covers: (tier: Tier) => tier === reserved,
        })),
        {
          slots: this.settings.reservedLiveSessionsForContacts,
          covers: (tier: Tier) => tier !== UNKNOWN_TIER,
        },
      ],
    );
    const sessions: SupervisedSessions & ReplaceableSessions = {
      get: (chatId) => this.sessions.get(chatId),
      entries: () => [...this.sessions],
      snapshots: () => this.snapshots(),
      opening: (chatId) => this.opening.get(chatId),
      shuttingDown: () => this.shuttingDown,
      restart: (chatId, reason) => this.restart(chatId, reason),
      stopLive: (chatId) => this.stopLive(chatId),
      reopen: (chatId, work) => this.reopen(chatId, work),
      open: (chatId, entry, resume, handoff) => this.open(chatId, entry, resume, handoff),
    };
    this.supervisor = new SessionSupervisor(deps, sessions, this.ledger, this.settings);
    this.replacer = createSessionReplacer(deps, sessions, this.ledger);
  }

  /** Loads nothing eagerly: sessions start on their chat's next message. */
  startup(): void {
    this.log.info("manager-start", { registered: this.deps.registry.size });
    const { clock } = this.deps;
    this.cancelTimers.push(
      clock.every(this.settings.healthCheckIntervalMs, () => void this.checkHealth()),
      clock.every(this.settings.reapCheckIntervalMs, () => void this.reapIdle()),
      clock.every(this.supervisor.stuckCheckIntervalMs, () => void this.checkStuckTurns()),
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
    // A message that comes while its chat is forgotten belongs to the new conversation.
    await this.forgetting.get(chatId);
    if (this.ledger.countOf(chatId) >= this.settings.maxQueuedPerChat) {
      throw new DispatchError(
        "queue_full",
        `Chat ${chatId} already has ${this.settings.maxQueuedPerChat} messages waiting for an answer; send again once it has caught up`,
      );
    }
    const message: SessionMessage = {
      id: delivery.messageId ?? randomUUID(),
      text: delivery.text,
      ...(delivery.inContext ? { inContext: delivery.inContext } : {}),
      ...(delivery.envelope ? { envelope: delivery.envelope } : {}),
    };
    const reply = this.ledger.add(chatId, message, delivery.recordIds);
    if (this.supervisor.isQuarantined(chatId)) {
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

  status(chatId: ChatId): SessionStatus | undefined {
    const entry = this.deps.registry.get(chatId);
    if (!entry) return undefined;
    const live = this.sessions.get(chatId)?.snapshot();
    const state = this.supervisor.isQuarantined(chatId)
      ? "quarantined"
      : (live?.state ?? "stopped");
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
    await this.forgetting.get(chatId);
    const entry = this.deps.registry.get(chatId);
    if (!entry) throw new DispatchError("not_found", `No session is registered for chat ${chatId}`);
    if (reason === "requested") this.supervisor.restartedByOperator(chatId);
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

  /**
   * Stops the session, drops its registry entry and archives its files, the CLI's data and its
   * transcript copy: the chat starts afresh next time, under a new name. Resolves with where the
   * files went, or undefined for a chat that was not registered.
   */
  forget(chatId: ChatId): Promise<string | undefined> {
    const earlier = this.forgetting.get(chatId) ?? Promise.resolve();
    const forgetting = earlier.then(() => this.forgetNow(chatId));
    const settled = forgetting.then(
      () => undefined,
      () => undefined,
    );
    this.forgetting.set(chatId, settled);
    void settled.then(() => {
      if (this.forgetting.get(chatId) === settled) this.forgetting.delete(chatId);
    });
    return forgetting;
  }

  /** The 5-minute check: restarts sessions whose process died, loop crashed or errors piled up. */
  checkHealth(): Promise<void> {
    return this.supervisor.checkHealth();
  }

  /** Interrupts turns past the turn timeout; restarts sessions still stuck one check later. */
  checkStuckTurns(): Promise<void> {
    return this.supervisor.checkStuckTurns();
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

  private async forgetNow(chatId: ChatId): Promise<string | undefined> {
    // A session still being opened is stopped once it is open.
    await this.opening.get(chatId)?.catch(() => undefined);
    await this.stop(chatId, "forget");
    this.supervisor.forget(chatId);
    this.ledger.dropChat(chatId, new DispatchError("not_found", `Chat ${chatId} was forgotten`));
    const entry = this.deps.registry.get(chatId);
    if (!entry) return undefined;
    const archive = await this.deps.archive.forget(chatId, entry);
    this.log.info("session-forget", { chatId, sessionName: entry.session_name, archive });
    return archive;
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
    // A name is free only when nothing of it is left: no chat holds it, and no folder, CLI
    // data or archive of that name is on disk (a new chat would inherit them).
    const entry = newRegistryEntry(
      delivery,
      this.deps.clock.now(),
      (name) => registry.isNameTaken(name) || this.deps.folders.isInUse(name),
    );
    registry.set(delivery.chatId, entry);
    this.log.info("session-register", { chatId: delivery.chatId, sessionName: entry.session_name });
    return { entry, isNew: true };
  }

  /**
   * Starts a session for a registered chat, resuming its id unless it is new. When the agent
   * turns out not to know the id, or resumes it short, the replacer starts a fresh one.
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
      {
        chatId,
        agentOptions: agentStartOptions(
          { chatId, entry, cwd, sessionId, resume },
          this.deps.policyFor(entry.tier, entry.chat_kind),
          this.deps,
        ),
      },
      {
        onSessionId: (id) => this.saveSessionIdDurably(chatId, id),
        onTurn: (reply) => this.handleTurn(reply),
        onExit: (error) => this.handleExit(chatId, session, error),
        // After each resume, before any message reaches it: the history must have come back.
        onResumed: async (history) =>
          !(await this.replacer.rebuildIfMissing(chatId, session, sessionId, history)),
      },
    );
    this.sessions.set(chatId, session);
    session.start();
    log.info(resume ? "session-resume" : "session-start", { agentSessionId: sessionId, cwd });
    if (handoff) session.pushContext(handoff);
    for (const message of this.ledger.messagesOf(chatId)) session.push(message);
    return session;
  }

  private handleTurn(turn: TurnReply): void {
    const { registry } = this.deps;
    const entry = registry.get(turn.chatId);
    if (entry) {
      registry.update(turn.chatId, {
        turns: entry.turns + 1,
        errors: entry.errors + (turn.isError ? 1 : 0),
        session_id: turn.agentSessionId,
      });
    }
    // The SDK counts spending over the whole process, so every later turn of this one would stop
    // at once: once this turn is handled, a fresh process resumes the session and counts from 0.
    if (turn.limit === "spend") queueMicrotask(() => this.restartAfterSpendLimit(turn.chatId));
    if (turn.internal) {
      this.log.info("session-context-turn", { chatId: turn.chatId, isError: turn.isError });
      return;
    }
    if (turn.limit) this.log.warn("turn-limit", { chatId: turn.chatId, limit: turn.limit });
    // A turn stopped by its tier's limit is answered: the contact is told it stopped.
    let reply: TurnReply | undefined = replyAfterLimit(turn);
    const failure = classifyTurnFailure(reply);
    if (failure === "retriable") {
      this.supervisor.retryLater(turn);
      return;
    }
    if (failure === "context-overflow") {
      reply = this.replacer.afterContextOverflow(turn);
      if (!reply) return;
    }
    if (!reply.isError) this.supervisor.turnSucceeded(reply.chatId);
    reply = this.ledger.settle(reply.messageIds, reply);
    if (this.livePool.waiting > 0 && this.ledger.countOf(reply.chatId) === 0) this.livePool.wake();
    try {
      this.deps.onReply(reply);
    } catch (error) {
      this.log.error("reply-handler-failed", { chatId: reply.chatId, cause: describeError(error) });
    }
  }

  private restartAfterSpendLimit(chatId: ChatId): void {
    if (this.shuttingDown) return;
    this.restart(chatId, "spend-limit").catch((error: unknown) =>
      this.log.warn("session-restart-failed", { chatId, cause: describeError(error) }),
    );
  }

  /** The receive loop ended by itself. Unanswered messages are carried into the next session. */
  private handleExit(chatId: ChatId, session: Session, error: unknown): void {
    if (this.sessions.get(chatId) !== session || this.shuttingDown) return;
    this.deps.onSessionEvent?.({ type: "fail", chatId, cause: describeError(error) });
    if (error instanceof AgentError && error.code === "agent_session_not_found") {
      this.replacer.replaceUnknown(chatId, session);
      return;
    }
    this.supervisor.crashed(chatId, session, error);
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
