import type { Channel, InboundMessage } from "../channels/channel.js";
import type {
  ControlPlane,
  HealthView,
  SessionView,
  SubmitResult,
} from "../channels/http/control-plane.js";
import { splitMessage } from "../channels/split-message.js";
import type { Config } from "../config/schema.js";
import type { Clock } from "../core/clock.js";
import { DispatchError, describeError } from "../core/errors.js";
import type { ChatId } from "../core/ids.js";
import type { SessionManager, SessionStatus } from "../core/session-manager.js";
import type { TurnReply } from "../core/session.js";
import { normaliseChatId } from "../identity/chat-id.js";
import type { ContactBook } from "../identity/contacts.js";
import type { Logger } from "../logging/logger.js";
import type { Registry } from "../store/registry.js";
import { NO_CREDENTIALS_MESSAGE } from "./credentials.js";
import { prepareDelivery } from "./intake.js";
import type { Metrics } from "./metrics.js";
import { isSilentReply } from "./tier-policy.js";

export interface DispatcherDeps {
  manager: SessionManager;
  registry: Registry;
  contacts: ContactBook;
  config: Config;
  metrics: Metrics;
  clock: Clock;
  logger: Logger;
  version: string;
  /** False when no Claude credentials were found: messages are refused with a clear error. */
  hasCredentials: boolean;
}

interface Taken {
  accepted: SubmitResult;
  answered: Promise<SubmitResult>;
}

/** Remembered per (channel, message id) so a repeated delivery is answered once. */
const IDEMPOTENCY_MEMORY = 10_000;

/**
 * The daemon's inbound and outbound paths: takes channel messages to the session manager, sends
 * each turn's reply out through the chat's channel, and answers the HTTP API's control calls.
 */
export class Dispatcher implements ControlPlane {
  private readonly channels = new Map<string, Channel>();
  private readonly seen = new Map<string, Promise<Taken>>();
  private readonly startedAtMs: number;
  private shuttingDown = false;

  constructor(private readonly deps: DispatcherDeps) {
    this.startedAtMs = deps.clock.now();
  }

  addChannel(channel: Channel): void {
    this.channels.set(channel.name, channel);
  }

  beginShutdown(): void {
    this.shuttingDown = true;
  }

  async submit(message: InboundMessage, options: { wait: boolean }): Promise<SubmitResult> {
    const taken = await this.takeOnce(message);
    return options.wait ? taken.answered : taken.accepted;
  }

  /** A message with a channel id is taken once: a repeated delivery gets the first one's outcome. */
  private takeOnce(message: InboundMessage): Promise<Taken> {
    if (!message.externalId) return this.take(message);
    const key = `${message.channel}\u0000${message.externalId}`;
    const earlier = this.seen.get(key);
    if (earlier) {
      this.deps.logger.info("message-duplicate", {
        channel: message.channel,
        externalId: message.externalId,
      });
      return earlier;
    }
    const taken = this.take(message);
    this.seen.set(key, taken);
    taken.catch(() => this.seen.delete(key));
    if (this.seen.size > IDEMPOTENCY_MEMORY) this.seen.delete(this.seen.keys().next().value!);
    return taken;
  }

  /** The sink for channels that push messages in (iMessage, Signal). */
  readonly sink = async (message: InboundMessage): Promise<void> => {
    await this.submit(message, { wait: false });
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

  health(): HealthView {
    const sessions = this.deps.manager.list();
    return {
      status: this.shuttingDown ? "shutting_down" : "ok",
      version: this.deps.version,
      uptime_seconds: Math.round((this.deps.clock.now() - this.startedAtMs) / 1000),
      sessions: {
        registered: sessions.length,
        live: sessions.filter((session) => session.live && session.state !== "stopped").length,
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

  /** Every finished turn: a reply goes out through the channel the chat last spoke on. */
  readonly onReply = (reply: TurnReply): void => {
    const { metrics, logger } = this.deps;
    metrics.turns.inc({ outcome: reply.isError ? "error" : "ok" });
    metrics.turnDuration.observe(reply.durationMs / 1000);
    if (reply.isError) {
      logger.warn("turn-error", { chatId: reply.chatId, error: reply.errorText });
      return;
    }
    if (isSilentReply(reply.text)) {
      logger.info("reply-silent", { chatId: reply.chatId });
      return;
    }
    void this.send(reply.chatId, reply.text);
  };

  /** The agent's `send_message` tool: an interim message to its own chat. */
  readonly sendInterim = async (chatId: ChatId, text: string): Promise<void> => {
    await this.send(chatId, text, { throwOnFailure: true });
  };

  private async send(
    chatId: ChatId,
    text: string,
    options = { throwOnFailure: false },
  ): Promise<void> {
    const { registry, metrics, logger } = this.deps;
    const channelName = registry.get(chatId)?.channel ?? "http";
    const channel = this.channels.get(channelName);
    if (!channel) {
      logger.error("reply-send failed: channel not running", { chatId, channel: channelName });
      if (options.throwOnFailure)
        throw new DispatchError("channel_unavailable", `Channel ${channelName} is not running`);
      return;
    }
    for (const part of splitMessage(text, channel.maxMessageLength)) {
      try {
        await channel.send(chatId, part);
        metrics.repliesSent.inc({ channel: channelName, outcome: "sent" });
        logger.info("reply-send", { chatId, channel: channelName, characters: part.length });
      } catch (error) {
        metrics.repliesSent.inc({ channel: channelName, outcome: "failed" });
        logger.error("reply-send failed", {
          chatId,
          channel: channelName,
          cause: describeError(error),
        });
        if (options.throwOnFailure) throw error;
        return;
      }
    }
  }

  private async take(message: InboundMessage): Promise<Taken> {
    const { manager, metrics, config, contacts } = this.deps;
    try {
      this.refuseWhenShuttingDown();
      if (!this.deps.hasCredentials)
        throw new DispatchError("no_credentials", NO_CREDENTIALS_MESSAGE);
      const delivery = prepareDelivery(message, { contacts, config });
      const { messageId, reply } = await manager.accept(delivery);
      metrics.messagesReceived.inc({ channel: message.channel });
      const entry = this.deps.registry.get(delivery.chatId);
      const accepted: SubmitResult = {
        chat_id: delivery.chatId,
        message_id: message.externalId ?? messageId,
        session_name: entry?.session_name ?? "",
        session_id: entry?.session_id ?? null,
      };
      const answered = reply.then((turn) => {
        if (turn.isError) {
          throw new DispatchError(
            "agent_error",
            `The agent's turn failed: ${turn.errorText ?? "no detail given"}`,
          );
        }
        return {
          ...accepted,
          session_id: turn.agentSessionId,
          reply: isSilentReply(turn.text) ? null : turn.text,
        };
      });
      answered.catch(() => undefined); // a fire-and-forget caller never looks at it
      return { accepted, answered };
    } catch (error) {
      metrics.messagesRejected.inc({
        reason: error instanceof DispatchError ? error.code : "internal",
      });
      throw error;
    }
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
