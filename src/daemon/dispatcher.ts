import type { InboundMessage } from "../channels/channel.js";
import type {
  ControlPlane,
  HealthView,
  SessionView,
  SubmitResult,
} from "../channels/http/control-plane.js";
import type { Config } from "../config/schema.js";
import type { Clock } from "../core/clock.js";
import { DispatchError, describeError } from "../core/errors.js";
import type { AgentSessionId, ChatId } from "../core/ids.js";
import type { SessionManager, SessionStatus } from "../core/session-manager.js";
import type { TurnReply } from "../core/session.js";
import { normaliseChatId } from "../identity/chat-id.js";
import type { ContactBook } from "../identity/contacts.js";
import type { Logger } from "../logging/logger.js";
import type { InboundRow, Journal } from "../store/journal.js";
import type { Registry } from "../store/registry.js";
import { NO_CREDENTIALS_MESSAGE } from "./credentials.js";
import {
  agentMessageIds,
  replayMessageId,
  type EarlierAnswer,
  type FindEarlierAnswer,
} from "./earlier-answer.js";
import { prepareDelivery } from "./intake.js";
import type { Metrics } from "./metrics.js";
import { isSilentReply } from "./tier-policy.js";

export interface DispatcherDeps {
  manager: SessionManager;
  registry: Registry;
  /** The contacts at start; `replaceContacts` swaps in an edited book. */
  contacts: ContactBook;
  config: Config;
  metrics: Metrics;
  clock: Clock;
  logger: Logger;
  version: string;
  journal: Journal;
  /** False when no Claude credentials were found: messages are refused with a clear error. */
  hasCredentials: boolean;
  /** Replies come from the offline stand-in model (`dispatch start --demo`); shown in health. */
  demo?: boolean;
  /** Told of each message handed to its session (`messageId`: the UUID the agent reports back). */
  onAccepted?(chatId: ChatId, messageId: string): void;
  /**
   * At replay, finds an answer the agent gave before a crash kept the journal from recording it
   * (`earlier-answer.ts`); `onRecoveredReply` records and sends it as the reply path does.
   */
  findEarlierAnswer?: FindEarlierAnswer;
  onRecoveredReply?(reply: TurnReply): void;
}

interface Taken {
  accepted: SubmitResult;
  answered: Promise<SubmitResult>;
}

/** How long a polled message whose chat is full waits before it is tried again. */
const POLLED_RETRY_MS = 5_000;

/** Refusals that stay true for the message: a retry of it gets the same answer. */
const FINAL_REFUSALS = new Set(["unknown_sender", "invalid_chat_id", "invalid_message"]);

/**
 * The daemon's inbound path and control plane: every message is recorded in the journal before
 * it is acknowledged, a repeated delivery (same channel and message id) is answered once, and
 * messages recorded but never answered (a crash) are replayed at start, in order.
 */
export class Dispatcher implements ControlPlane {
  /** Messages being answered, by journal id: a repeated delivery joins the first. */
  private readonly inflight = new Map<number, Promise<Taken>>();
  /** Journal id of each message given to a session, by the UUID the agent reports back. */
  private readonly inboundIds = new Map<string, number>();
  private readonly startedAtMs: number;
  private shuttingDown = false;
  private contacts: ContactBook;

  constructor(private readonly deps: DispatcherDeps) {
    this.startedAtMs = deps.clock.now();
    this.contacts = deps.contacts;
  }

  /** An edited contacts book, whole and already validated: the next message is looked up in it. */
  replaceContacts(contacts: ContactBook): void {
    this.contacts = contacts;
  }

  /** For the reply path: which journal row a message UUID belongs to. */
  readonly inboundIdOf = (messageUuid: string): number | undefined => {
    const id = this.inboundIds.get(messageUuid);
    this.inboundIds.delete(messageUuid);
    return id;
  };

  /**
   * Gives every message recorded but not answered before a restart to its session again: each
   * chat's in the order they arrived, the chats side by side (one slow session start must not
   * hold up every chat after it).
   */
  async replayPending(): Promise<number> {
    const pending = this.deps.journal.pendingInbound().filter((row) => !this.inflight.has(row.id));
    const byChat = new Map<string, { row: InboundRow; claim: Deferred<Taken> }[]>();
    for (const row of pending) {
      // Claimed before the first await: a client that repeats a message id while the rows
      // before it are replayed joins its replay, instead of handing it over a second time.
      const claim = deferred<Taken>();
      this.inflight.set(row.id, claim.promise);
      const key = this.chatKeyOf(row);
      byChat.set(key, [...(byChat.get(key) ?? []), { row, claim }]);
    }
    await Promise.all(
      [...byChat.values()].map(async (rows) => {
        for (const { row, claim } of rows) {
          this.deps.logger.info("message-replay", {
            channel: row.channel,
            chatId: row.chatId,
            id: row.id,
          });
          const taken = this.replay(row);
          claim.resolve(taken);
          void taken.then(
            ({ answered }) =>
              answered.finally(() => this.inflight.delete(row.id)).catch(() => undefined),
            (error: unknown) => {
              this.inflight.delete(row.id);
              this.deps.logger.warn("message replay refused", {
                id: row.id,
                cause: describeError(error),
              });
            },
          );
          // Accepting in order keeps the chat's messages in the order they arrived.
          await taken.catch(() => undefined);
        }
      }),
    );
    return pending.length;
  }

  /** The chat a recorded row belongs to; the id as given when it does not normalise. */
  private chatKeyOf(row: InboundRow): string {
    try {
      return this.normalise(row.chatId);
    } catch {
      return row.chatId;
    }
  }

  /**
   * One message again after a restart: the answer the agent gave it before the crash, when its
   * transcript holds one; otherwise a new hand-over, under a new id (the CLI skips an id its
   * transcript already holds, and would never answer).
   */
  private async replay(row: InboundRow): Promise<Taken> {
    const earlierIds = agentMessageIds(row.uuid, row.attempts);
    const earlier = await this.findEarlierAnswer(row, earlierIds);
    if (earlier) return this.answerFromTranscript(row, earlierIds.at(-1)!, earlier);
    const replays = this.deps.journal.recordAttempt(row.id);
    return this.deliverRecorded(row, replayMessageId(row.uuid, replays));
  }

  private async findEarlierAnswer(
    row: InboundRow,
    messageIds: readonly string[],
  ): Promise<EarlierAnswer | undefined> {
    if (!this.deps.findEarlierAnswer) return undefined;
    try {
      return await this.deps.findEarlierAnswer(this.normalise(row.chatId), messageIds);
    } catch (error) {
      // Not knowing means asking the agent again: a second answer beats none.
      this.deps.logger.warn("earlier answer lookup failed", {
        id: row.id,
        cause: describeError(error),
      });
      return undefined;
    }
  }

  /** Records and sends an answer found in the transcript, as if its turn had just ended. */
  private answerFromTranscript(row: InboundRow, messageId: string, earlier: EarlierAnswer): Taken {
    const chatId = this.normalise(row.chatId);
    this.deps.logger.info("message-answer-recover", { chatId, id: row.id });
    this.inboundIds.set(messageId, row.id);
    this.deps.onRecoveredReply?.({
      chatId,
      agentSessionId: earlier.agentSessionId as AgentSessionId,
      messageIds: [messageId],
      text: earlier.text,
      isError: false,
      totalCostUsd: 0,
      durationMs: 0,
    });
    const entry = this.deps.registry.get(chatId);
    const accepted: SubmitResult = {
      chat_id: chatId,
      message_id: row.externalId ?? row.uuid,
      session_name: entry?.session_name ?? "",
      session_id: earlier.agentSessionId,
    };
    const reply = isSilentReply(earlier.text) ? null : earlier.text;
    return { accepted, answered: Promise.resolve({ ...accepted, reply }) };
  }

  beginShutdown(): void {
    this.shuttingDown = true;
  }

  /**
   * The message is recorded, and handed to its session at once; the acknowledgment waits until
   * the record would survive a power cut. Without `wait` that is a `sync()` of the journal, which
   * runs beside the agent's work; with `wait` the reply is the acknowledgment, and its own record
   * in the outbox is fsynced, with everything before it, before it is returned.
   */
  async submit(message: InboundMessage, options: { wait: boolean }): Promise<SubmitResult> {
    const taken = await this.take(message);
    if (!options.wait) {
      await this.deps.journal.sync();
      return taken.accepted;
    }
    try {
      return await taken.answered;
    } catch (error) {
      // A refusal after the hand-over (quarantine, a failed turn) still tells the client its
      // message is known: the record must outlast a power cut as a reply's would.
      await this.deps.journal.sync().catch(() => undefined);
      throw error;
    }
  }

  /**
   * The sink for channels that push messages in (iMessage, Signal), with their cursor. Nothing is
   * acknowledged to anyone here: a power cut that undoes the record undoes the cursor with it,
   * and the channel reads the message again from its source.
   */
  readonly sink = async (message: InboundMessage, options?: { cursor?: string }): Promise<void> => {
    try {
      await this.take(message, options?.cursor);
    } catch (error) {
      // Recorded and refused for good (an unknown sender): the cursor moved on with it.
      if (error instanceof DispatchError && FINAL_REFUSALS.has(error.code)) return;
      throw error;
    }
  };

  listSessions(): SessionView[] {
    return this.deps.manager.list().map(toView);
  }

  getSession(chatId: string): SessionView | undefined {
    const status = this.deps.manager.status(this.normalise(chatId));
    return status ? toView(status) : undefined;
  }

  async restartSession(chatId: string): Promise<SessionView> {
    const id = this.normalise(chatId);
    this.refuseWhenShuttingDown();
    await this.deps.manager.restart(id);
    return toView(this.deps.manager.status(id)!);
  }

  async stopSession(chatId: string, options: { forget: boolean }): Promise<void> {
    const id = this.normalise(chatId);
    if (!this.deps.registry.get(id)) throw notFound(id);
    if (options.forget) await this.deps.manager.forget(id);
    else await this.deps.manager.stop(id);
  }

  /**
   * Counts only, never a walk of every registered chat: `/healthz` and `/metrics` are polled,
   * and at ten thousand chats building each one's status cost tens of milliseconds per call.
   * `live` is the pool's count of sessions holding a slot (a live agent process, or one starting).
   */
  health(): HealthView {
    return {
      status: this.shuttingDown ? "shutting_down" : "ok",
      version: this.deps.version,
      demo: this.deps.demo === true,
      uptime_seconds: Math.round((this.deps.clock.now() - this.startedAtMs) / 1000),
      sessions: {
        registered: this.deps.registry.size,
        live: this.deps.manager.pool().live,
      },
    };
  }

  async metrics(): Promise<{ contentType: string; body: string }> {
    const health = this.health();
    this.deps.metrics.sessionsLive.set(health.sessions.live);
    this.deps.metrics.sessionsRegistered.set(health.sessions.registered);
    const pool = this.deps.manager.pool();
    this.deps.metrics.poolBound.set(pool.bound);
    this.deps.metrics.poolWaiting.set(pool.waiting);
    this.deps.metrics.poolEvictions.set(pool.evictions);
    this.deps.metrics.messagesQueued.set(this.deps.manager.unansweredCount());
    const { registry } = this.deps.metrics;
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  /** Records the message (with the channel's cursor, in one transaction), then delivers it. */
  private async take(message: InboundMessage, cursor?: string): Promise<Taken> {
    const { journal, metrics, logger } = this.deps;
    try {
      this.refuseWhenShuttingDown();
      if (!this.deps.hasCredentials)
        throw new DispatchError("no_credentials", NO_CREDENTIALS_MESSAGE);
      const recorded = journal.recordInbound(
        message,
        cursor === undefined ? undefined : { cursor },
      );
      if (recorded.duplicate) {
        logger.info("message-duplicate", {
          channel: message.channel,
          externalId: message.externalId,
          status: recorded.status,
        });
        const earlier = this.inflight.get(recorded.id);
        if (earlier) return await earlier;
        const row = journal.findByExternalId(message.channel, message.externalId!)!;
        if (recorded.status === "answered") return this.alreadyAnswered(row, recorded.reply ?? []);
        if (recorded.status === "rejected") {
          throw new DispatchError(
            row.errorCode ?? "bad_request",
            row.errorMessage ?? "This message was refused before",
          );
        }
        // Recorded but not being answered (refused for a passing reason earlier): try again.
      }
      const row = { ...message, id: recorded.id, uuid: recorded.uuid };
      if (cursor !== undefined) return await this.deliverPolled(row);
      const taken = this.deliverRecorded(row);
      this.inflight.set(recorded.id, taken);
      taken.then(
        ({ answered }) =>
          answered.finally(() => this.inflight.delete(recorded.id)).catch(() => undefined),
        () => this.inflight.delete(recorded.id),
      );
      return await taken;
    } catch (error) {
      metrics.messagesRejected.inc({
        reason: error instanceof DispatchError ? error.code : "internal",
      });
      throw error;
    }
  }

  /**
   * A message from a polling channel is already durable and its cursor has moved on: when its
   * chat's queue is full, it waits in the journal and is tried again later, instead of holding
   * up every other chat of the channel behind it.
   */
  private async deliverPolled(
    row: InboundMessage & Pick<InboundRow, "id" | "uuid">,
  ): Promise<Taken> {
    const taken = this.deliverRecorded(row);
    this.inflight.set(row.id, taken);
    try {
      const result = await taken;
      void result.answered.finally(() => this.inflight.delete(row.id)).catch(() => undefined);
      return result;
    } catch (error) {
      this.inflight.delete(row.id);
      if (!(error instanceof DispatchError) || error.code !== "queue_full") throw error;
      this.deps.logger.warn("message-deferred", {
        chatId: row.chatId,
        id: row.id,
        retryInMs: POLLED_RETRY_MS,
      });
      this.deps.clock.after(POLLED_RETRY_MS, () => {
        if (this.shuttingDown) return; // still recorded: the next start replays it
        this.deliverPolled(row).catch((cause: unknown) =>
          this.deps.logger.warn("deferred message refused", {
            id: row.id,
            cause: describeError(cause),
          }),
        );
      });
      const accepted: SubmitResult = {
        chat_id: row.chatId,
        message_id: row.externalId ?? row.uuid,
        session_name: "",
        session_id: null,
      };
      return { accepted, answered: Promise.reject(error).catch(() => accepted) };
    }
  }

  /** Identity, tier and wrapping, then into the session; a final refusal is recorded as such. */
  private async deliverRecorded(
    row: InboundMessage & Pick<InboundRow, "id" | "uuid">,
    /** The id the agent gets the message with: the journal's, or a replay's (`replay`). */
    agentMessageId: string = row.uuid,
  ): Promise<Taken> {
    const { manager, metrics, config, journal } = this.deps;
    const { contacts } = this;
    let delivery;
    try {
      delivery = prepareDelivery(row, { contacts, config });
    } catch (error) {
      if (error instanceof DispatchError && FINAL_REFUSALS.has(error.code)) {
        journal.markRejected(row.id, error.code, error.message);
      }
      throw error;
    }
    this.inboundIds.set(agentMessageId, row.id);
    let accepted;
    try {
      accepted = await manager.accept({ ...delivery, messageId: agentMessageId });
    } catch (error) {
      // queue_full, shutting_down: the row stays received, for a retry or the next start.
      this.inboundIds.delete(agentMessageId);
      throw error;
    }
    journal.markDelivered(row.id);
    metrics.messagesReceived.inc({ channel: row.channel });
    this.deps.onAccepted?.(delivery.chatId, agentMessageId);
    const entry = this.deps.registry.get(delivery.chatId);
    const base: SubmitResult = {
      chat_id: delivery.chatId,
      message_id: row.externalId ?? row.uuid,
      session_name: entry?.session_name ?? "",
      session_id: entry?.session_id ?? null,
    };
    const answered = accepted.reply.then((turn) => {
      if (turn.isError) {
        throw new DispatchError(
          "agent_error",
          `The agent's turn failed: ${turn.errorText ?? "no detail given"}`,
        );
      }
      return {
        ...base,
        session_id: turn.agentSessionId,
        reply: isSilentReply(turn.text) ? null : turn.text,
      };
    });
    answered.catch(() => undefined); // a fire-and-forget caller never looks at it
    return { accepted: base, answered };
  }

  /** A repeated delivery of a message answered before: the same reply, from the journal. */
  private alreadyAnswered(row: InboundRow, parts: readonly string[]): Taken {
    const chatId = this.normalise(row.chatId);
    const entry = this.deps.registry.get(chatId);
    const result: SubmitResult = {
      chat_id: chatId,
      message_id: row.externalId ?? row.uuid,
      session_name: entry?.session_name ?? "",
      session_id: entry?.session_id ?? null,
      reply: parts.length > 0 ? parts.join("\n\n") : null,
    };
    const { reply: _reply, ...accepted } = result;
    return { accepted, answered: Promise.resolve(result) };
  }

  private refuseWhenShuttingDown(): void {
    if (this.shuttingDown) {
      throw new DispatchError(
        "shutting_down",
        "dispatch is shutting down; send the message again once it is back",
      );
    }
  }

  private normalise(chatId: string): ChatId {
    const region = this.deps.config.defaultRegion
      ? { defaultRegion: this.deps.config.defaultRegion }
      : {};
    return normaliseChatId(chatId, region);
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T | Promise<T>): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T | Promise<T>) => void;
  const promise = new Promise<T>((done) => (resolve = done));
  promise.catch(() => undefined); // a claim nobody joined must not reject unhandled
  return { promise, resolve };
}

function notFound(chatId: ChatId): DispatchError {
  return new DispatchError(
    "not_found",
    `No session is registered for chat ${chatId}; \`dispatch status\` lists them`,
  );
}

function toView(status: SessionStatus): SessionView {
  return {
    chat_id: status.chat_id,
    session_name: status.session_name,
    contact_name: status.contact_name,
    tier: status.tier,
    session_id: status.session_id,
    state: status.state,
    created_at: status.created_at,
    last_message_time: status.last_message_time,
    chat_kind: status.chat_kind,
    channel: status.channel,
    turns: status.turns,
    errors: status.errors,
    restarts: status.restarts,
    unanswered: status.queued,
    pid: status.live?.pid ?? null,
    total_cost_usd: status.live?.totalCostUsd ?? null,
    previous_session_ids: status.previous_session_ids,
  };
}
