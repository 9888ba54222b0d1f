import type { InboundMessage, SinkOutcome } from "../channels/channel.js";
import type { SubmitResult } from "../channels/http/control-plane.js";
import type { HttpReplyChannel, WaitedReply } from "../channels/http/http-reply-channel.js";
import type { Config } from "../config/schema.js";
import type { Clock } from "../utils/clock.js";
import { DispatchError, describeError } from "../utils/errors.js";
import type { ChatId } from "../utils/ids.js";
import type { Delivery, SessionManager } from "../core/session-manager.js";
import type { TurnReply } from "../core/session.js";
import type { ContactBook } from "../identity/contacts.js";
import type { Logger } from "../logging/logger.js";
import type { InboundRow, Journal } from "../store/journal.js";
import type { Registry } from "../store/registry.js";
import { NO_CREDENTIALS_MESSAGE } from "./credentials.js";
import type { FindInTranscript } from "./earlier-answer.js";
import { createIntakeLimits, type IntakeLimits } from "./intake-limits.js";
import { identifyChat, normaliseChatIdFor, prepareDelivery } from "./intake.js";
import type { Metrics } from "./metrics.js";
import { replayPending } from "./unanswered-replay.js";
import type { ChatRouter, Elsewhere } from "../cluster/chat-router.js";

export interface InboxDeps {
  manager: SessionManager;
  registry: Registry;
  /** Read on every message: a holder whose book an edit of contacts.json replaces. */
  contacts: ContactBook;
  config: Config;
  metrics: Metrics;
  clock: Clock;
  logger: Logger;
  journal: Journal;
  /** False when no Claude credentials were found: messages are refused with a clear error. */
  hasCredentials: boolean;
  /** Told of each message handed to its session (`messageId`: the UUID the agent reports back). */
  onAccepted?(chatId: ChatId, messageId: string): void;
  /**
   * At replay, finds where each message stands in its chat's transcript (`earlier-answer.ts`):
   * answered before a crash kept the journal from recording it, or in the context unanswered.
   * `onRecoveredReply` records and sends an answer found there as the reply path does.
   */
  findInTranscript?: FindInTranscript;
  onRecoveredReply?(reply: TurnReply): Promise<void>;
  /**
   * The channel whose clients wait in the request for the reply (HTTP): each of its messages'
   * replies is waited for there, where the reply path (`reply-sender.ts`) hands it over.
   */
  answeredInRequest?: Pick<HttpReplyChannel, "name" | "waitFor" | "stopWaiting">;
  /**
   * A cluster's node (`cluster/chat-router.ts`): where each message's session runs. A message
   * whose session runs on another node stays in the journal and that node is woken; its reply
   * comes back through the router. Unset: every session runs here.
   */
  router?: Pick<ChatRouter, "place" | "wake">;
}

export interface Taken {
  accepted: SubmitResult;
  answered: Promise<SubmitResult>;
  /** A repeat of a message answered before: `answered` holds that reply, no turn will run. */
  answeredBefore?: true;
}

/** A recorded row, as far as handing it to its session needs it. */
export type RecordedMessage = InboundMessage & Pick<InboundRow, "id" | "uuid" | "envelopeNonce">;

/** How long a polled message whose chat is full waits before it is tried again. */
const POLLED_RETRY_MS = 5_000;

/** Refusals that stay true for the message: a retry of it gets the same answer. */
const FINAL_REFUSALS = new Set(["unknown_sender", "invalid_chat_id", "invalid_message"]);

/**
 * Refusals by the intake limits (`intake-limits.ts`). A message that can be sent again (HTTP) is
 * refused before it is recorded; one from a polling channel, whose cursor has moved on, is
 * recorded as rejected with the reason.
 */
const LIMIT_REFUSALS = new Set(["rate_limited", "too_many_new_chats"]);

/**
 * The daemon's way in: every message is recorded in the journal before it is acknowledged,
 * counted against the intake limits, a repeated delivery (same channel and message id) is
 * answered once, and messages recorded but never answered (a crash) are replayed at start, in
 * order (`unanswered-replay.ts`). Each is handed to its session with the journal ids it stands for, which its turn's
 * reply carries back to the reply path (`reply-sender.ts`). Sessions are run from
 * `session-control.ts`.
 */
export class Inbox {
  /** Messages being answered, by journal id: a repeated delivery joins the first. */
  private readonly inflight = new Map<number, Promise<Taken>>();
  /**
   * Messages another node answers (a cluster), by journal id, until their reply comes: a repeat
   * joins the first. Apart from `inflight`, which says what this node is answering.
   */
  private readonly forwarded = new Map<number, Promise<Taken>>();
  /** Takes of a message with an external id, by channel and id, until each has settled. */
  private readonly taking = new Map<string, Promise<void>>();
  private readonly limits: IntakeLimits;
  private stopping = false;

  constructor(private readonly deps: InboxDeps) {
    this.limits = createIntakeLimits({
      messagesPerChatPerMinute: deps.config.messagesPerChatPerMinute,
      newUnknownChatsPerMinute: deps.config.newUnknownChatsPerMinute,
      now: () => deps.clock.now(),
    });
  }

  /**
   * Gives every message recorded but not answered before a restart to its session again
   * (`unanswered-replay.ts`).
   */
  replayPending(include?: (row: InboundRow) => boolean): Promise<number> {
    return replayPending({
      ...this.deps,
      ...(include ? { include } : {}),
      inflight: this.inflight,
      inbox: {
        deliverRecorded: (row, agentMessageId) => this.deliverRecorded(row, agentMessageId),
        prepare: (row) => this.prepare(row),
        handOver: (rows, delivery) => this.handOver(rows, delivery),
        waitInRequest: (row) => this.waitInRequest(row),
      },
    });
  }

  beginShutdown(): void {
    this.stopping = true;
  }

  /** Whether the daemon is stopping: messages are refused, the control plane reports it. */
  readonly shuttingDown = (): boolean => this.stopping;

  /**
   * The message is recorded, and handed to its session at once; the acknowledgment waits until
   * the record would survive a power cut. Without `wait` that is a `sync()` of the journal, which
   * runs beside the agent's work; with `wait` the reply is the acknowledgment, and its own record
   * in the outbox is fsynced, with everything before it, before it is returned.
   */
  readonly submit = async (
    message: InboundMessage,
    options: { wait: boolean },
  ): Promise<SubmitResult> => {
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
  };

  /**
   * The sink for channels that push messages in (iMessage, Signal), with their cursor. Nothing is
   * acknowledged to anyone here: a power cut that undoes the record undoes the cursor with it,
   * and the channel reads the message again from its source.
   */
  readonly sink = async (
    message: InboundMessage,
    options?: { cursor?: string },
  ): Promise<SinkOutcome> => {
    try {
      const taken = await this.take(message, options?.cursor);
      return taken.answeredBefore ? "answered-before" : "accepted";
    } catch (error) {
      // Recorded and refused for good (an unknown sender, a limit): the cursor moved on with it.
      if (
        error instanceof DispatchError &&
        (FINAL_REFUSALS.has(error.code) || LIMIT_REFUSALS.has(error.code))
      )
        return "refused";
      throw error;
    }
  };

  /**
   * Records the message (with the channel's cursor, in one transaction), then delivers it. The
   * intake limits come first for a message its sender can send again (HTTP): refused, it leaves
   * no trace. A polling channel's message is recorded first, and rejected with the reason.
   */
  private async take(message: InboundMessage, cursor?: string): Promise<Taken> {
    if (message.externalId === undefined) return this.takeNow(message, cursor);
    // One take of a (channel, external id) at a time in this process, until it is handed over:
    // a repeat must find the first in flight, not a row recorded and not yet claimed.
    const key = `${message.channel}\u0000${message.externalId}`;
    const before = this.taking.get(key) ?? Promise.resolve();
    const mine = before.then(() => this.takeNow(message, cursor));
    const settled = mine.then(
      () => undefined,
      () => undefined,
    );
    this.taking.set(key, settled);
    void settled.then(() => {
      if (this.taking.get(key) === settled) this.taking.delete(key);
    });
    return mine;
  }

  private async takeNow(message: InboundMessage, cursor?: string): Promise<Taken> {
    const { journal, metrics, logger } = this.deps;
    try {
      this.refuseWhenShuttingDown();
      if (!this.deps.hasCredentials)
        throw new DispatchError("no_credentials", NO_CREDENTIALS_MESSAGE);
      if (cursor === undefined) this.admitUnrecorded(message);
      const recorded = await journal.recordInbound(
        message,
        cursor === undefined ? undefined : { cursor },
      );
      if (recorded.duplicate) {
        logger.info("message-duplicate", {
          channel: message.channel,
          externalId: message.externalId,
          status: recorded.status,
        });
        const row = (await journal.findByExternalId(message.channel, message.externalId!))!;
        // Looked at after the last wait: a replay may have claimed it meanwhile.
        const earlier = this.inflight.get(recorded.id) ?? this.forwarded.get(recorded.id);
        if (earlier) return await earlier;
        if (recorded.status === "answered") return this.alreadyAnswered(row, recorded.reply ?? []);
        if (recorded.status === "rejected") {
          throw new DispatchError(
            row.errorCode ?? "bad_request",
            row.errorMessage ?? "This message was refused before",
          );
        }
        // Recorded but not being answered (refused for a passing reason earlier): try again.
      }
      // Claimed meanwhile by a cluster's pick-up of the journal (`chat-router.ts`): join it.
      const claimed = this.inflight.get(recorded.id) ?? this.forwarded.get(recorded.id);
      if (claimed) return await claimed;
      const row: RecordedMessage = {
        ...message,
        id: recorded.id,
        uuid: recorded.uuid,
        ...(recorded.envelopeNonce === undefined ? {} : { envelopeNonce: recorded.envelopeNonce }),
      };
      if (cursor !== undefined) {
        // Counted once, when first taken: a redelivery of a recorded row is not a new message.
        if (!recorded.duplicate) await this.admitRecorded(row);
        return await this.deliverPolled(row);
      }
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
   * Counts the message against the intake limits, or throws why it is refused. A message refused
   * for who it is from (an invalid chat id, a sender not answered) is left to that refusal.
   */
  private admit(message: InboundMessage): void {
    let identity;
    try {
      identity = identifyChat(message, this.deps);
    } catch {
      return;
    }
    if (!identity.answered) return;
    this.limits.admit({
      chatId: identity.chatId,
      tier: identity.tier,
      registered: this.deps.registry.get(identity.chatId) !== undefined,
    });
  }

  /** The intake limits for a message not recorded (HTTP): refused, its sender is told to retry. */
  private admitUnrecorded(message: InboundMessage): void {
    try {
      this.admit(message);
    } catch (error) {
      this.deps.logger.info("message-refuse", {
        channel: message.channel,
        chatId: message.chatId,
        code: error instanceof DispatchError ? error.code : "internal",
      });
      throw error;
    }
  }

  /**
   * The intake limits for a message already recorded (a polling channel's, whose cursor moved
   * on with it): refused, it is rejected in the journal with the reason, never answered.
   */
  private async admitRecorded(row: InboundMessage & Pick<InboundRow, "id">): Promise<void> {
    try {
      this.admit(row);
    } catch (error) {
      if (!(error instanceof DispatchError)) throw error;
      await this.deps.journal.markRejected(row.id, error.code, error.message);
      this.deps.logger.warn("message-reject", {
        channel: row.channel,
        chatId: row.chatId,
        id: row.id,
        code: error.code,
      });
      throw error;
    }
  }

  /**
   * A message from a polling channel is already durable and its cursor has moved on: when its
   * chat's queue is full, it waits in the journal and is tried again later, instead of holding
   * up every other chat of the channel behind it.
   */
  private async deliverPolled(row: RecordedMessage): Promise<Taken> {
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
        if (this.stopping) return; // still recorded: the next start replays it
        this.deliverPolled(row).catch((cause: unknown) =>
          this.deps.logger.warn("deferred-message-refused", {
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
    row: RecordedMessage,
    /** The id the agent gets the message with: the journal's, or a replay's (`replay`). */
    agentMessageId: string = row.uuid,
  ): Promise<Taken> {
    const delivery = await this.prepare(row);
    const elsewhere = await this.deps.router?.place(delivery);
    if (elsewhere) return this.forward(row, delivery, elsewhere);
    const [taken] = await this.handOver([row], { ...delivery, messageId: agentMessageId });
    return taken!;
  }

  /**
   * A cluster's message whose session runs on another node: it stays in the journal, that node
   * is woken, and a request waiting here gets the reply when the router hands it over.
   */
  private async forward(
    row: RecordedMessage,
    delivery: Delivery,
    elsewhere: Elsewhere,
  ): Promise<Taken> {
    // Before the wake-up: the reply can come back before it returns.
    const waited = this.waitInRequest(row);
    this.inflight.delete(row.id);
    try {
      await this.deps.router!.wake(elsewhere);
    } catch (error) {
      // The owner's sweep finds it in the journal all the same, within a second or so.
      this.deps.logger.warn("message-wake-up-fail", {
        id: row.id,
        node: elsewhere.node,
        cause: describeError(error),
      });
    }
    this.deps.metrics.messagesReceived.inc({ channel: row.channel });
    this.deps.logger.debug("message-forward", { id: row.id, node: elsewhere.node });
    const entry = this.deps.registry.get(delivery.chatId);
    const accepted: SubmitResult = {
      chat_id: delivery.chatId,
      message_id: row.externalId ?? row.uuid,
      session_name: elsewhere.sessionName,
      session_id: entry?.session_id ?? null,
    };
    const answered = waited
      ? waited.then((answer) => ({
          ...accepted,
          session_id: answer.agentSessionId,
          reply: answer.reply,
        }))
      : Promise.resolve(accepted);
    answered.catch(() => undefined);
    const taken: Taken = { accepted, answered };
    const joined = Promise.resolve(taken);
    this.forwarded.set(row.id, joined);
    void answered
      .finally(() => {
        if (this.forwarded.get(row.id) === joined) this.forwarded.delete(row.id);
      })
      .catch(() => undefined);
    return taken;
  }

  /**
   * Identity, tier and wrapping, in the envelope the message had before when it had one, whose
   * nonce is recorded before the agent can see it; a final refusal is recorded as such.
   */
  private async prepare(row: RecordedMessage): Promise<Delivery> {
    const { config, contacts, journal } = this.deps;
    let delivery;
    try {
      delivery = prepareDelivery(
        row,
        { contacts, config },
        row.envelopeNonce === undefined ? {} : { envelopeNonce: row.envelopeNonce },
      );
    } catch (error) {
      if (error instanceof DispatchError && FINAL_REFUSALS.has(error.code)) {
        await journal.markRejected(row.id, error.code, error.message);
      }
      throw error;
    }
    const nonce = delivery.envelope?.nonce;
    if (row.envelopeNonce === undefined && nonce !== undefined) {
      await journal.recordEnvelopeNonce(row.id, nonce);
    }
    return delivery;
  }

  /**
   * Into the session, on behalf of `rows` (one, or several that one reminder stands for);
   * a `Taken` per row, answered together.
   */
  private async handOver(
    rows: readonly RecordedMessage[],
    delivery: Delivery & { messageId: string },
  ): Promise<Taken[]> {
    const { manager, metrics, journal } = this.deps;
    // Before the hand-over: the reply can come back before `accept` returns.
    const waiting = rows.map((row) => this.waitInRequest(row));
    const stopWaiting = () => {
      for (const row of rows) this.deps.answeredInRequest?.stopWaiting(row.id);
    };
    let accepted;
    try {
      accepted = await manager.accept({ ...delivery, recordIds: rows.map((row) => row.id) });
    } catch (error) {
      // queue_full, shutting_down: the rows stay received, for a retry or the next start.
      stopWaiting();
      throw error;
    }
    for (const row of rows) {
      await journal.markDelivered(row.id);
      metrics.messagesReceived.inc({ channel: row.channel });
    }
    this.deps.onAccepted?.(delivery.chatId, delivery.messageId);
    const entry = this.deps.registry.get(delivery.chatId);
    // The reply itself comes by the reply path (`reply-sender.ts`); the ledger says only when
    // no turn will answer (quarantine, a forget, a session that could not start).
    const refused = accepted.reply.then(
      () => new Promise<never>(() => undefined),
      (error: unknown) => {
        // The session moved to another node (a cluster): the reply comes from there.
        if (error instanceof DispatchError && error.code === "lease_lost") {
          return new Promise<never>(() => undefined);
        }
        stopWaiting();
        throw error;
      },
    );
    refused.catch(() => undefined); // looked at only by the rows someone waits for
    return rows.map((row, index) => {
      const base: SubmitResult = {
        chat_id: delivery.chatId,
        message_id: row.externalId ?? row.uuid,
        session_name: entry?.session_name ?? "",
        session_id: entry?.session_id ?? null,
      };
      const waited = waiting[index];
      // Nobody waits for a polling channel's message: settled is all its caller needs to know.
      const result = waited
        ? Promise.race([waited, refused]).then((answer) => ({
            ...base,
            session_id: answer.agentSessionId,
            reply: answer.reply,
          }))
        : accepted.reply.then((turn) => {
            if (turn.isError) throw new DispatchError("agent_error", "The agent's turn failed");
            return base;
          });
      result.catch(() => undefined); // a fire-and-forget caller never looks at it
      return { accepted: base, answered: result };
    });
  }

  /** The reply to a message of the channel that answers in its request (HTTP), when it comes. */
  private waitInRequest(row: RecordedMessage): Promise<WaitedReply> | undefined {
    const channel = this.deps.answeredInRequest;
    if (channel?.name !== row.channel) return undefined;
    const waited = channel.waitFor(row.id);
    waited.catch(() => undefined);
    return waited;
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
    return { accepted, answered: Promise.resolve(result), answeredBefore: true };
  }

  private refuseWhenShuttingDown(): void {
    if (this.stopping) throw shuttingDownError();
  }

  private normalise(chatId: string): ChatId {
    return normaliseChatIdFor(chatId, this.deps.config);
  }
}

/** Why a message or a restart is refused while the daemon stops. */
export function shuttingDownError(): DispatchError {
  return new DispatchError(
    "shutting_down",
    "dispatch is shutting down; send the message again once it is back",
  );
}
