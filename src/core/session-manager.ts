import { randomUUID } from "node:crypto";
import { AgentError } from "../agent/agent-error.js";
import type { AgentPort, AgentStartOptions, PermissionMode } from "../agent/port.js";
import { createSessionName } from "../identity/session-name.js";
import type { Logger } from "../logging/logger.js";
import type { Registry, RegistryEntry } from "../store/registry.js";
import type { Clock } from "./clock.js";
import { DispatchError, describeError } from "./errors.js";
import { backoffDelayMs, diagnose, findIdle } from "./health.js";
import { newAgentSessionId, type AgentSessionId, type ChatId } from "./ids.js";
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
  random?: () => number;
}

export interface SessionManagerOptions {
  healthCheckIntervalMs: number;
  idleTimeoutMs: number;
  /** How often idle sessions are looked for; the idle timeout itself is `idleTimeoutMs`. */
  reapCheckIntervalMs?: number;
  maxConsecutiveErrors: number;
}

export interface SessionStatus extends RegistryEntry {
  chat_id: ChatId;
  state: SessionState;
  live: SessionSnapshot | undefined;
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
  private readonly waiters = new Map<
    string,
    { resolve(reply: TurnReply): void; reject(error: Error): void }
  >();
  /**
   * Every message delivered and not yet answered, per chat, in order. It outlives sessions: a
   * session that is restarted, replaced or reopened gets all of them pushed again.
   */
  private readonly unanswered = new Map<ChatId, Map<string, SessionMessage>>();
  private readonly restartAttempts = new Map<ChatId, number>();
  private readonly drainWaiters = new Set<() => void>();
  private readonly cancelTimers: (() => void)[] = [];
  private shuttingDown = false;
  private readonly log: Logger;

  constructor(
    private readonly deps: SessionManagerDeps,
    private readonly options: SessionManagerOptions,
  ) {
    this.log = deps.logger;
  }

  /** Loads nothing eagerly: sessions start on their chat's next message. */
  startup(): void {
    this.log.info("manager-start", { registered: this.deps.registry.size });
    const { clock } = this.deps;
    this.cancelTimers.push(
      clock.every(this.options.healthCheckIntervalMs, () => void this.checkHealth()),
      clock.every(this.reapCheckIntervalMs(), () => void this.reapIdle()),
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
    if (this.shuttingDown) {
      throw new DispatchError(
        "shutting_down",
        "dispatch is shutting down; send the message again after it restarts",
      );
    }
    const message: SessionMessage = { id: randomUUID(), text: delivery.text };
    const reply = new Promise<TurnReply>((resolve, reject) =>
      this.waiters.set(message.id, { resolve, reject }),
    );
    this.unansweredFor(delivery.chatId).set(message.id, message);
    let session: Session;
    try {
      session = await this.sessionFor(delivery);
    } catch (error) {
      this.unanswered.get(delivery.chatId)?.delete(message.id);
      this.waiters.delete(message.id);
      throw error;
    }
    // A session that failed meanwhile is being replaced, and its replacement gets the message.
    if (session.accepting()) session.push(message);
    this.deps.registry.update(delivery.chatId, {
      last_message_time: new Date(this.deps.clock.now()).toISOString(),
      channel: delivery.channel,
    });
    // Nobody may be waiting for the reply (fire-and-forget channels); a rejection at shutdown
    // must not become an unhandled one.
    reply.catch(() => undefined);
    return { messageId: message.id, reply };
  }

  /** Messages delivered and not yet answered, across all chats. */
  unansweredCount(): number {
    let count = 0;
    for (const messages of this.unanswered.values()) count += messages.size;
    return count;
  }

  /** Resolves true once every delivered message has been answered, false after `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.unansweredCount() === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const cancel = this.deps.clock.after(timeoutMs, () => {
        this.drainWaiters.delete(done);
        resolve(false);
      });
      const done = () => {
        cancel();
        resolve(true);
      };
      this.drainWaiters.add(done);
    });
  }

  has(chatId: ChatId): boolean {
    return this.sessions.has(chatId);
  }

  status(chatId: ChatId): SessionStatus | undefined {
    const entry = this.deps.registry.get(chatId);
    if (!entry) return undefined;
    const live = this.sessions.get(chatId)?.snapshot();
    return { chat_id: chatId, ...entry, state: live?.state ?? "stopped", live };
  }

  list(): SessionStatus[] {
    return [...this.deps.registry.entries()].map(([chatId]) => this.status(chatId)!);
  }

  /** Stops a chat's session and starts it again with resume, keeping unanswered messages. */
  async restart(chatId: ChatId, reason = "requested"): Promise<void> {
    const entry = this.deps.registry.get(chatId);
    if (!entry) throw new DispatchError("not_found", `No session is registered for chat ${chatId}`);
    await this.reopen(chatId, async () => {
      await this.stopLive(chatId);
      const updated = this.deps.registry.update(chatId, { restarts: entry.restarts + 1 });
      this.log.info("session-restart", {
        chatId,
        reason,
        unanswered: this.unanswered.get(chatId)?.size ?? 0,
      });
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
      try {
        await this.restart(chatId, reason);
      } catch (error) {
        this.log.error("session restart failed", { chatId, cause: describeError(error) });
      }
    }
  }

  async reapIdle(): Promise<void> {
    const snapshots = [...this.sessions].map(
      ([chatId, session]) => [chatId, session.snapshot()] as const,
    );
    for (const chatId of findIdle(snapshots, this.deps.clock.now(), this.options.idleTimeoutMs)) {
      await this.stop(chatId, "idle");
      this.log.info("session-reap", { chatId });
    }
  }

  /** Saves every session id and stops every session. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    for (const cancel of this.cancelTimers.splice(0)) cancel();
    await Promise.allSettled([...this.opening.values()]);
    await Promise.all([...this.sessions.keys()].map((chatId) => this.stop(chatId, "shutdown")));
    this.unanswered.clear();
    await this.deps.registry.flush();
    const unanswered = new DispatchError(
      "shutting_down",
      "dispatch shut down before this message was answered",
    );
    for (const waiter of this.waiters.values()) waiter.reject(unanswered);
    this.waiters.clear();
    this.log.info("manager-stop", {});
  }

  private reapCheckIntervalMs(): number {
    return this.options.reapCheckIntervalMs ?? Math.min(60_000, this.options.idleTimeoutMs);
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
    return true;
  }

  private unansweredFor(chatId: ChatId): Map<string, SessionMessage> {
    let messages = this.unanswered.get(chatId);
    if (!messages) {
      messages = new Map();
      this.unanswered.set(chatId, messages);
    }
    return messages;
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
      session_name: createSessionName(
        delivery.contactName ?? delivery.chatId,
        registry.takenNames(),
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
  private async open(chatId: ChatId, entry: RegistryEntry, resume = true): Promise<Session> {
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
      },
    );
    this.sessions.set(chatId, session);
    session.start();
    log.info(resume ? "session-resume" : "session-start", { agentSessionId: sessionId, cwd });
    for (const message of this.unanswered.get(chatId)?.values() ?? []) session.push(message);
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

  private handleTurn(reply: TurnReply): void {
    const entry = this.deps.registry.get(reply.chatId);
    if (entry) {
      this.deps.registry.update(reply.chatId, {
        turns: entry.turns + 1,
        errors: entry.errors + (reply.isError ? 1 : 0),
        session_id: reply.agentSessionId,
      });
    }
    if (!reply.isError) this.restartAttempts.delete(reply.chatId);
    for (const id of reply.messageIds) {
      this.unanswered.get(reply.chatId)?.delete(id);
      this.waiters.get(id)?.resolve(reply);
      this.waiters.delete(id);
    }
    try {
      this.deps.onReply(reply);
    } catch (error) {
      this.log.error("reply handler failed", { chatId: reply.chatId, cause: describeError(error) });
    }
    if (this.drainWaiters.size > 0 && this.unansweredCount() === 0) {
      for (const done of [...this.drainWaiters]) done();
      this.drainWaiters.clear();
    }
  }

  /** The receive loop ended by itself. Unanswered messages are carried into the next session. */
  private handleExit(chatId: ChatId, session: Session, error: unknown): void {
    if (this.sessions.get(chatId) !== session || this.shuttingDown) return;
    if (error instanceof AgentError && error.code === "agent_session_not_found") {
      void this.replaceUnknownSession(chatId);
      return;
    }
    if (!this.unanswered.get(chatId)?.size) return; // the health check restarts it
    const attempt = this.restartAttempts.get(chatId) ?? 0;
    this.restartAttempts.set(chatId, attempt + 1);
    const delayMs = backoffDelayMs(attempt, this.deps.random);
    this.log.warn("session-restart-scheduled", {
      chatId,
      attempt,
      delayMs,
      cause: describeError(error),
    });
    this.deps.clock.after(delayMs, () => {
      if (this.sessions.get(chatId) !== session || this.shuttingDown) return;
      this.restart(chatId, "crashed").catch((cause: unknown) =>
        this.log.error("session restart failed", { chatId, cause: describeError(cause) }),
      );
    });
  }

  /** The agent lost the transcript: start fresh, keep the old id in history, lose no message. */
  private async replaceUnknownSession(chatId: ChatId): Promise<void> {
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
            ...(oldId
              ? [{ session_id: oldId, replaced_at: replacedAt, reason: "unknown to the agent" }]
              : []),
          ],
        });
        await this.deps.registry.flush();
        this.log.warn("session-resume-unknown", {
          chatId,
          oldSessionId: oldId,
          newSessionId: newId,
        });
        return this.open(chatId, updated, false);
      });
    } catch (error) {
      this.log.error("fresh session after unknown resume id failed", {
        chatId,
        cause: describeError(error),
      });
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
