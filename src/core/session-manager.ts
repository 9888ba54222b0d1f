import { randomUUID } from "node:crypto";
import { AgentError } from "../agent/agent-error.js";
import type { Logger } from "../logging/logger.js";
import type { Registry, RegistryEntry } from "../store/registry.js";
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
import { joinedEntry, personSessionOf, sessionWideRegistry } from "./person-sessions.js";
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
 * One session per chat, or per person (the seed's SDKBackend): lazy creation, resume from the
 * registry, idle reaping, the live-session pool, and a shutdown that saves every session id.
 * Replies are matched to the messages they answer, and go back to the handle each came from.
 *
 * The chats of one person's session (one session name in the registry, `personOf`) share one
 * live session, one queue and one supervision, all keyed by the session's key chat: the first
 * of its chats this process met (`keyOf`). Every public method takes any chat of the session.
 *
 * Restarts it decides on its own are the supervisor's (`session-supervisor.ts`); fresh sessions
 * in an old one's place are the replacer's (`session-replacement.ts`).
 */
export class SessionManager {
  /** Live sessions by key chat (`keyOf`); so are `opening`, `forgetting`, the ledger, the pool. */
  private readonly sessions = new Map<ChatId, Session>();
  /** Lower-cased session name -> its key chat, for as long as that chat holds the name. */
  private readonly keyChats = new Map<string, ChatId>();
  /** Key chat -> the chat that wrote last: where the agent's interim messages go. */
  private readonly latestChat = new Map<ChatId, ChatId>();
  /** Key chats registered in this process whose session never started: it starts afresh. */
  private readonly fresh = new Set<ChatId>();
  /** The registry, with session ids written to every chat of a session (`sessionWideRegistry`). */
  private readonly registry: Registry;
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
    this.registry = sessionWideRegistry(deps.registry);
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
    const sessionDeps = { ...deps, registry: this.registry };
    this.supervisor = new SessionSupervisor(sessionDeps, sessions, this.ledger, this.settings);
    this.replacer = createSessionReplacer(sessionDeps, sessions, this.ledger);
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
    // A message that comes while its session is forgotten belongs to the new conversation.
    const person = this.deps.personOf?.(chatId);
    const joining = person && personSessionOf(person, (id) => this.registry.get(id), chatId);
    await this.forgetting.get(
      this.keyOf(this.registry.get(chatId) ? chatId : (joining?.chatId ?? chatId)),
    );
    const key = await this.enter(delivery, person);
    if (this.ledger.countOf(key) >= this.settings.maxQueuedPerChat) {
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
    const reply = this.ledger.add(key, message, delivery.recordIds, {
      chatId,
      channel: delivery.channel,
    });
    this.latestChat.set(key, chatId);
    if (this.supervisor.isQuarantined(key)) {
      // Kept for when an operator lifts the quarantine; whoever waits hears why now.
      this.ledger.rejectWaiters(key, quarantinedError(key));
      return { messageId: message.id, reply };
    }
    let session: Session;
    try {
      session = await this.sessionFor(key);
    } catch (error) {
      this.ledger.fail(message.id, error instanceof Error ? error : new Error(String(error)));
      throw error;
    }
    // A session that failed meanwhile is being replaced, and its replacement gets the message.
    if (session.accepting()) session.push(message);
    this.registry.update(chatId, {
      last_message_time: new Date(this.deps.clock.now()).toISOString(),
      channel: delivery.channel,
    });
    return { messageId: message.id, reply };
  }

  /** The chats of `chatId`'s session, its own included (one, but for a person's session). */
  chatsOfSession(chatId: ChatId): ChatId[] {
    const entry = this.registry.get(chatId);
    return entry ? this.registry.chatsNamed(entry.session_name) : [];
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
    const entry = this.registry.get(chatId);
    if (!entry) return undefined;
    const key = this.keyOf(chatId);
    const live = this.sessions.get(key)?.snapshot();
    const state = this.supervisor.isQuarantined(key) ? "quarantined" : (live?.state ?? "stopped");
    return { chat_id: chatId, ...entry, state, live, queued: this.ledger.countOf(key) };
  }

  list(): SessionStatus[] {
    return [...this.deps.registry.entries()].map(([chatId]) => this.status(chatId)!);
  }

  /**
   * Stops a chat's session and starts it again with resume, keeping unanswered messages. An
   * operator's restart (the default reason) also lifts a quarantine.
   */
  async restart(chatId: ChatId, reason = "requested"): Promise<void> {
    await this.forgetting.get(this.keyOf(chatId));
    const key = this.keyOf(chatId);
    const entry = this.registry.get(key);
    if (!entry) throw new DispatchError("not_found", `No session is registered for chat ${chatId}`);
    if (reason === "requested") this.supervisor.restartedByOperator(key);
    await this.reopen(key, async () => {
      await this.stopLive(key);
      const updated = this.registry.update(key, { restarts: entry.restarts + 1 });
      this.log.info("session-restart", {
        chatId: key,
        reason,
        unanswered: this.ledger.countOf(key),
      });
      this.deps.onSessionEvent?.({ type: "restart", chatId: key, reason });
      return this.open(key, updated, !this.fresh.delete(key));
    });
  }

  /** Closes a chat's session (a person's, for any of its chats); it resumes on the next message. */
  async stop(chatId: ChatId, reason = "requested"): Promise<boolean> {
    const key = this.keyOf(chatId);
    const stopped = await this.stopLive(key);
    if (stopped) this.log.info("session-stop", { chatId: key, reason });
    return stopped;
  }

  /**
   * A cluster's node lost the session's lease (`cluster/chat-router.ts`): stops it here and drops
   * its queue, whose waiters hear `lease_lost`; the node that holds the lease now answers those
   * messages from the journal. Its registry entries stay.
   */
  async relinquish(chatId: ChatId): Promise<void> {
    const key = this.keyOf(chatId);
    await this.opening.get(key)?.catch(() => undefined);
    await this.stopLive(key);
    this.ledger.dropChat(
      key,
      new DispatchError(
        "lease_lost",
        `The session of chat ${chatId} moved to another node of the cluster, which answers it`,
      ),
    );
    this.log.info("session-stop", { chatId: key, reason: "lease-lost" });
  }

  /**
   * Stops the session, drops its registry entries (every chat of a person's session) and
   * archives its files, the CLI's data and its transcript copy: its chats start afresh next
   * time, under a new name. Resolves with where the files went, or undefined for a chat that was
   * not registered.
   */
  forget(chatId: ChatId): Promise<string | undefined> {
    chatId = this.keyOf(chatId);
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
    this.latestChat.delete(chatId);
    this.fresh.delete(chatId);
    const entry = this.registry.get(chatId);
    if (!entry) return undefined;
    // The other chats of a person's session go with it; the archive drops the key chat's entry
    // and flushes them all together.
    const others = this.registry.chatsNamed(entry.session_name).filter((id) => id !== chatId);
    for (const other of others) this.registry.remove(other);
    const archive = await this.deps.archive.forget(chatId, entry);
    this.keyChats.delete(entry.session_name.toLowerCase());
    this.log.info("session-forget", {
      chatId,
      sessionName: entry.session_name,
      archive,
      ...(others.length > 0 ? { chats: [chatId, ...others] } : {}),
    });
    return archive;
  }

  private snapshots(): (readonly [ChatId, SessionSnapshot])[] {
    return [...this.sessions].map(([chatId, session]) => [chatId, session.snapshot()] as const);
  }

  /**
   * The key chat of `chatId`'s session (the chat its live session, queue and supervision are
   * kept under): itself, or for a chat sharing a person's session, the chat of that session this
   * process met first, for as long as that one holds the session's name.
   */
  private keyOf(chatId: ChatId): ChatId {
    const entry = this.registry.get(chatId);
    if (!entry) return chatId;
    const name = entry.session_name.toLowerCase();
    const key = this.keyChats.get(name);
    if (key !== undefined && this.registry.get(key)?.session_name.toLowerCase() === name) {
      return key;
    }
    this.keyChats.set(name, chatId);
    return chatId;
  }

  /**
   * Registers the delivery's chat, or joins it to its person's session, and returns its key. A
   * chat with a session of its own that is now one of a person's handles (a handle added to a
   * contact) joins the person's session here, once its own has nothing left to answer.
   */
  private async enter(delivery: Delivery, person: readonly ChatId[] | undefined): Promise<ChatId> {
    const { chatId } = delivery;
    const ownKey = (): ChatId | undefined => {
      const entry = this.registry.get(chatId);
      const target = person && personSessionOf(person, (id) => this.registry.get(id), chatId);
      if (!entry || !target || entry.session_name === target.entry.session_name) return undefined;
      const key = this.keyOf(chatId);
      return this.ledger.countOf(key) === 0 && !this.opening.has(key) ? key : undefined;
    };
    const leaving = ownKey();
    if (leaving !== undefined) {
      await this.stopLive(leaving);
      // Checked again: a message may have come for the old session meanwhile.
      if (ownKey() === leaving) this.join(chatId, person!);
    }
    const { isNew } = this.registerChat(delivery, person);
    const key = this.keyOf(chatId);
    if (isNew) this.fresh.add(key);
    return key;
  }

  /** A registered chat leaves its own session for its person's (see `joinedEntry`). */
  private join(chatId: ChatId, person: readonly ChatId[]): void {
    const entry = this.registry.get(chatId)!;
    const target = personSessionOf(person, (id) => this.registry.get(id), chatId)!;
    this.registry.set(chatId, joinedEntry(entry, target.entry, new Date(this.deps.clock.now())));
    this.latestChat.delete(chatId);
    this.log.info("session-join", {
      chatId,
      sessionName: target.entry.session_name,
      left: entry.session_name,
      leftSessionId: entry.session_id,
    });
  }

  private sessionFor(key: ChatId): Promise<Session> {
    const existing = this.sessions.get(key);
    if (existing?.accepting() && !this.opening.has(key)) return Promise.resolve(existing);
    return this.reopen(key, async () => {
      await this.stopLive(key);
      const entry = this.registry.get(key);
      if (!entry) throw new DispatchError("not_found", `Chat ${key} was forgotten meanwhile`);
      // The session id must be durable before the agent can produce a first reply.
      await this.registry.flush();
      return this.open(key, entry, !this.fresh.delete(key));
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
    return this.registry.get(chatId)?.tier ?? "unknown";
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

  /**
   * The chat's registry entry, created on its first message (in its person's session when the
   * person has one); contact and tier kept current.
   */
  private registerChat(
    delivery: Delivery,
    person: readonly ChatId[] | undefined,
  ): { entry: RegistryEntry; isNew: boolean } {
    const { registry } = this;
    const existing = registry.get(delivery.chatId);
    if (existing) {
      const entry = registry.update(delivery.chatId, {
        contact_name: delivery.contactName ?? existing.contact_name,
        tier: delivery.tier,
        session_id: existing.session_id ?? newAgentSessionId(),
      });
      return { entry, isNew: existing.session_id === null };
    }
    const target = person && personSessionOf(person, (id) => registry.get(id), delivery.chatId);
    // A name is free only when nothing of it is left: no chat holds it, and no folder, CLI
    // data or archive of that name is on disk (a new chat would inherit them). A person's new
    // handle takes the person's.
    const entry = newRegistryEntry(
      delivery,
      this.deps.clock.now(),
      (name) => registry.isNameTaken(name) || this.deps.folders.isInUse(name),
      target?.entry,
    );
    registry.set(delivery.chatId, entry);
    this.log.info("session-register", {
      chatId: delivery.chatId,
      sessionName: entry.session_name,
      ...(target ? { joined: target.chatId } : {}),
    });
    return { entry, isNew: target === undefined };
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
          // A person's session writes to the handle that wrote last.
          this.deps.sendInterim
            ? {
                sendInterim: (key, text) =>
                  this.deps.sendInterim!(this.latestChat.get(key) ?? key, text),
              }
            : {},
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
    const { registry } = this;
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
    if (this.registry.get(chatId)) this.registry.update(chatId, { session_id: sessionId });
  }

  private async saveSessionIdDurably(chatId: ChatId, sessionId: AgentSessionId): Promise<void> {
    if (this.registry.get(chatId)?.session_id === sessionId) return;
    this.saveSessionId(chatId, sessionId);
    await this.registry.flush();
  }
}
