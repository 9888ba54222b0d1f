/**
 * The restarts dispatch decides on its own, and when it stops deciding them. The health check
 * restarts sessions whose process died, whose loop crashed or whose errors piled up; a turn past
 * the timeout is interrupted, then its session restarted; a session that crashed with messages
 * waiting is restarted after a backoff; a turn the API failed (overload, rate limit) is tried
 * again after a backoff. A chat restarted too often is quarantined until an operator restarts it.
 *
 * Apart from the session manager, which owns the sessions and how they open and close; this
 * module owns only when that happens, through the `SupervisedSessions` the manager provides.
 * The decisions themselves are pure (`health.ts`, `restart-policy.ts`).
 */
import type { Logger } from "../logging/logger.js";
import type { Registry } from "../store/registry.js";
import type { Clock } from "../utils/clock.js";
import { DispatchError, describeError } from "../utils/errors.js";
import { diagnose, findStuck } from "./health.js";
import type { ChatId } from "../utils/ids.js";
import type { MessageLedger } from "./message-ledger.js";
import { RestartPolicy } from "./restart-policy.js";
import type { Session, SessionSnapshot, TurnReply } from "./session.js";

/** What the supervisor needs of the sessions it watches; the session manager provides it. */
export interface SupervisedSessions {
  /** The chat's live session, if it has one. */
  get(chatId: ChatId): Session | undefined;
  /** Every live session, by chat. */
  entries(): (readonly [ChatId, Session])[];
  snapshots(): (readonly [ChatId, SessionSnapshot])[];
  shuttingDown(): boolean;
  /** Stops the chat's session and starts it again with resume (`SessionManager.restart`). */
  restart(chatId: ChatId, reason: string): Promise<void>;
  /** Stops the chat's live session, if any; it resumes on its next message. */
  stopLive(chatId: ChatId): Promise<boolean>;
}

/** The ports the supervisor uses; the session manager passes its own deps. */
export interface SessionSupervisorDeps {
  registry: Registry;
  clock: Clock;
  logger: Logger;
  /** Replies of dispatch's own (a message given up) go out like any turn's. */
  onReply(reply: TurnReply): void;
  onSessionEvent?(event: { type: "quarantine"; chatId: ChatId; reason: string }): void;
  random?: () => number;
}

export interface SupervisionSettings {
  maxConsecutiveErrors: number;
  turnTimeoutMs: number;
  maxRestarts: number;
  restartWindowMs: number;
  maxMessageAttempts: number;
}

export class SessionSupervisor {
  private readonly restartPolicy: RestartPolicy;
  /** Chats restarted too often: their messages stay queued until an operator restarts them. */
  private readonly quarantined = new Set<ChatId>();
  /** Sessions interrupted for running past the turn timeout, and when. */
  private readonly interruptedAt = new Map<Session, number>();
  private readonly log: Logger;

  constructor(
    private readonly deps: SessionSupervisorDeps,
    private readonly sessions: SupervisedSessions,
    /** The manager's ledger: messages given up leave it, retried ones are pushed again from it. */
    private readonly ledger: MessageLedger,
    private readonly settings: SupervisionSettings,
  ) {
    this.log = deps.logger;
    this.restartPolicy = new RestartPolicy({
      maxRestarts: settings.maxRestarts,
      windowMs: settings.restartWindowMs,
      ...(deps.random ? { random: deps.random } : {}),
    });
  }

  /** How often turns are looked at for the timeout: a quarter of it, within 1 to 30 seconds. */
  get stuckCheckIntervalMs(): number {
    return Math.max(1_000, Math.min(30_000, Math.floor(this.settings.turnTimeoutMs / 4)));
  }

  isQuarantined(chatId: ChatId): boolean {
    return this.quarantined.has(chatId);
  }

  /** An operator restarted the chat by hand: its failures are forgotten, a quarantine lifted. */
  restartedByOperator(chatId: ChatId): void {
    this.restartPolicy.reset(chatId);
    if (this.quarantined.delete(chatId)) this.log.info("session-quarantine-lift", { chatId });
  }

  /** The chat was forgotten: it starts over unquarantined. */
  forget(chatId: ChatId): void {
    this.quarantined.delete(chatId);
  }

  /** A turn went well: the chat's next failure starts the backoff from the beginning. */
  turnSucceeded(chatId: ChatId): void {
    this.restartPolicy.succeeded(chatId);
  }

  /** The 5-minute check: restarts sessions whose process died, loop crashed or errors piled up. */
  async checkHealth(): Promise<void> {
    const { sessions } = this;
    for (const [chatId, session] of sessions.entries()) {
      const reason = diagnose(session.snapshot(), this.settings.maxConsecutiveErrors);
      if (!reason || sessions.shuttingDown()) continue;
      this.log.warn("session-unhealthy", { chatId, reason });
      await this.restartAutomatically(chatId, session, reason, 0);
    }
  }

  /**
   * Interrupts turns running past the turn timeout; a session still stuck one check later is
   * restarted. One stuck chat never holds up the others: each has its own process.
   */
  async checkStuckTurns(): Promise<void> {
    const { sessions, ledger } = this;
    const now = this.deps.clock.now();
    for (const chatId of findStuck(sessions.snapshots(), now, this.settings.turnTimeoutMs)) {
      const session = sessions.get(chatId);
      if (!session || sessions.shuttingDown()) continue;
      const interruptedAt = this.interruptedAt.get(session);
      if (interruptedAt === undefined) {
        this.interruptedAt.set(session, now);
        this.log.warn("turn-timeout", { chatId, timeoutMs: this.settings.turnTimeoutMs });
        await session
          .interrupt()
          .catch((error: unknown) =>
            this.log.warn("turn-interrupt-failed", { chatId, cause: describeError(error) }),
          );
      } else if (now > interruptedAt) {
        // The message it is stuck on is answered with an error, or the restart would only hand
        // it the same message again.
        const [stuckMessage] = ledger.messagesOf(chatId);
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

  /**
   * The session's receive loop crashed: with messages waiting it is restarted after a backoff;
   * without, the health check restarts it.
   */
  crashed(chatId: ChatId, session: Session, error: unknown): void {
    if (this.ledger.countOf(chatId) === 0) return;
    void this.restartAutomatically(chatId, session, `crashed: ${describeError(error)}`);
  }

  /**
   * The API failed the turn (overloaded, rate limited) after the CLI's own retries: the messages
   * stay queued and are pushed again after a backoff, up to `maxMessageAttempts` turns.
   */
  retryLater(reply: TurnReply): void {
    const { chatId } = reply;
    const { ledger, sessions } = this;
    const retry: string[] = [];
    for (const id of reply.messageIds) {
      if (ledger.recordFailure(id) < this.settings.maxMessageAttempts) retry.push(id);
    }
    const givenUp = reply.messageIds.filter((id) => !retry.includes(id));
    if (givenUp.length > 0) {
      this.log.error("message-give-up", {
        chatId,
        attempts: this.settings.maxMessageAttempts,
        error: reply.errorText,
      });
      this.deps.onReply(ledger.settle(givenUp, reply));
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
      const session = sessions.get(chatId);
      if (!session?.accepting() || sessions.shuttingDown()) return; // a reopened session gets them anyway
      for (const message of ledger.messagesOf(chatId)) {
        if (retry.includes(message.id)) session.push(message);
      }
    });
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
    const { sessions } = this;
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
    if (sessions.get(chatId) !== session || sessions.shuttingDown()) return;
    await sessions
      .restart(chatId, reason)
      .catch((cause: unknown) =>
        this.log.error("session-restart-failed", { chatId, cause: describeError(cause) }),
      );
  }

  private async quarantine(chatId: ChatId, restarts: number, reason: string): Promise<void> {
    const { ledger } = this;
    this.quarantined.add(chatId);
    this.deps.onSessionEvent?.({ type: "quarantine", chatId, reason });
    this.log.error("session-quarantine", {
      chatId,
      restarts,
      reason,
      queued: ledger.countOf(chatId),
      fix: `find the cause in the log, then run: dispatch sessions restart ${chatId}`,
    });
    await this.sessions.stopLive(chatId);
    ledger.rejectWaiters(chatId, quarantinedError(chatId));
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
    this.deps.onReply(this.ledger.settle(reply.messageIds, reply));
  }
}

/** Why a quarantined chat's message waits: told to whoever waits for its reply. */
export function quarantinedError(chatId: ChatId): DispatchError {
  return new DispatchError(
    "quarantined",
    `Chat ${chatId} is quarantined after repeated failures; its messages stay queued. ` +
      `Check the log, then run \`dispatch sessions restart ${chatId}\` to try again.`,
  );
}
