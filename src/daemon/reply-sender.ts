import { DEFAULT_DELIVERY, type Channel, type DeliveryPolicy } from "../channels/channel.js";
import { splitMessage } from "../channels/split-message.js";
import type { Clock } from "../utils/clock.js";
import { DispatchError, describeError } from "../utils/errors.js";
import type { ChatId } from "../utils/ids.js";
import type { TurnReply } from "../core/session.js";
import type { Logger } from "../logging/logger.js";
import type { Fence } from "../store/chat-ownership.js";
import type { Journal, OutboxRow } from "../store/journal.js";
import type { Registry } from "../store/registry.js";
import type { Metrics } from "./metrics.js";
import { isSilentReply } from "./tier-policy.js";

export interface ReplySenderDeps {
  journal: Journal;
  registry: Registry;
  metrics: Metrics;
  clock: Clock;
  logger: Logger;
  /**
   * A cluster's node: the lease a chat's reply is recorded under (`ChatRouter.fenceOf`), and
   * what to tell the other nodes once it is recorded (a request there may wait for it).
   */
  cluster?: {
    fenceOf(chatId: ChatId): Fence | undefined;
    replyRecorded(chatId: ChatId, inboundIds: readonly number[]): Promise<void>;
    /**
     * Parts on a channel this node does not have (iMessage runs on one Mac) are recorded, and
     * the node that has it is told to send them (`sendUnsent` there).
     */
    handOff(channel: string): Promise<void>;
    /** The longest message of a channel this node does not have, to split its replies to. */
    maxLengthOf(channel: string): number | undefined;
  };
}

/**
 * A record refused because the message is answered elsewhere: another node answered it (a
 * cluster), or this node's lease of the session was taken over. Nothing is sent for it.
 */
const ANSWERED_ELSEWHERE = new Set(["journal_conflict", "lease_lost"]);

/**
 * The outbound path: each finished turn becomes outbox rows in the journal (one per part, split
 * to the channel's limit) before anything is sent; each part is marked sent once its channel
 * confirms, retried with backoff when it fails, abandoned after its channel's `maxAttempts`
 * (`Channel.delivery`, `DEFAULT_DELIVERY` when unset).
 */
export class ReplySender {
  private readonly channels = new Map<string, Channel>();
  /** Each chat's latest reply being recorded, settled either way. */
  private readonly recording = new Map<ChatId, Promise<void>>();
  /** Outbox ids being sent (or waiting for a retry) here: `sendUnsent` leaves them alone. */
  private readonly sending = new Set<number>();

  constructor(private readonly deps: ReplySenderDeps) {}

  addChannel(channel: Channel): void {
    this.channels.set(channel.name, channel);
  }

  /**
   * Every finished turn, once (and each answer found in a transcript at replay): decided silent
   * or not, split to its channel, recorded against the journal rows it answers, handed to the
   * channels that answer in a request (`Channel.answer`: HTTP), then sent part by part. It goes
   * to the chat and channel of the latest message it answers (`TurnReply.replyTo`: one of a
   * person's handles), else to its chat's last channel. Resolves once the reply is recorded (or
   * its record failed) and handed to those channels; never rejects.
   */
  readonly onReply = async (reply: TurnReply): Promise<void> => {
    const { metrics, logger, journal } = this.deps;
    metrics.turns.inc({ outcome: reply.isError ? "error" : "ok" });
    metrics.turnDuration.observe(reply.durationMs / 1000);
    // The journal rows the turn answers, handed over with its messages (`Delivery.recordIds`).
    const inboundIds = reply.recordIds ?? [];
    const chatId = reply.replyTo?.chatId ?? reply.chatId;
    const channelName = reply.replyTo?.channel ?? this.channelOf(reply.chatId);
    const channel = this.channels.get(channelName);
    let text: string | null = null;
    let parts: string[] = [];
    if (reply.isError) {
      logger.warn("turn-error", { chatId, error: reply.errorText });
    } else if (isSilentReply(reply.text)) {
      logger.info("reply-silent", { chatId });
    } else {
      text = reply.text;
      parts = splitMessage(
        text,
        channel?.maxMessageLength ??
          this.deps.cluster?.maxLengthOf(channelName) ??
          Number.MAX_SAFE_INTEGER,
      );
    }
    const answer = (): void => {
      for (const each of this.channels.values()) {
        each.answer?.({
          chatId,
          answers: inboundIds,
          agentSessionId: reply.agentSessionId,
          text,
          ...(reply.isError ? { failure: reply.errorText ?? "no detail given" } : {}),
        });
      }
    };
    if (inboundIds.length === 0) {
      // Not from the journal (nothing recorded it): send it all the same.
      void this.sendUnrecorded(chatId, channelName, parts);
      return;
    }
    let rows: OutboxRow[];
    // Recorded one after the other per chat, so that its replies start out in the order its
    // turns ended (an asynchronous journal could otherwise commit a later one first).
    const fence = this.deps.cluster?.fenceOf(reply.chatId);
    const record = () =>
      journal.markAnswered(
        inboundIds,
        {
          channel: channelName,
          chatId,
          parts,
          ...(reply.isError ? { failure: reply.errorText ?? "no detail given" } : {}),
        },
        fence === undefined ? {} : { fence },
      );
    const before = this.recording.get(reply.chatId);
    const recorded = before === undefined ? record() : before.then(record);
    const settled = recorded.then(
      () => undefined,
      () => undefined,
    );
    this.recording.set(reply.chatId, settled);
    void settled.then(() => {
      if (this.recording.get(reply.chatId) === settled) this.recording.delete(reply.chatId);
    });
    try {
      rows = await recorded;
    } catch (error) {
      if (error instanceof DispatchError && ANSWERED_ELSEWHERE.has(error.code)) {
        logger.warn("reply-drop", { chatId, reason: error.code, cause: error.message });
        return;
      }
      // The reply is not lost with the journal: it still goes out, just unrecorded.
      logger.error("reply-record-failed", { chatId, cause: describeError(error) });
      answer();
      void this.sendUnrecorded(chatId, channelName, parts);
      return;
    }
    // Recorded, on disk: a request waiting for it may be answered now.
    answer();
    void this.deps.cluster?.replyRecorded(reply.chatId, inboundIds);
    void this.sendRows(rows);
  };

  /** The agent's `send_message` tool: an interim message to its own chat, sent at once. */
  readonly sendInterim = async (chatId: ChatId, text: string): Promise<void> => {
    const channelName = this.channelOf(chatId);
    const channel = this.channels.get(channelName);
    if (!channel) {
      throw new DispatchError("channel_unavailable", `Channel ${channelName} is not running`);
    }
    for (const part of splitMessage(text, channel.maxMessageLength)) {
      await channel.send(chatId, part);
      this.deps.metrics.repliesSent.inc({ channel: channelName, outcome: "sent" });
    }
  };

  /**
   * Replies recorded but never confirmed sent, from before a crash, sent again when younger than
   * their channel's `resendWindowMs`. An iMessage part younger than ten minutes is sent again (a
   * duplicate text beats silence); an older one is abandoned, since it would arrive out of
   * context. An HTTP reply is sent again to the reply webhook, when there is one (for a day);
   * without one it has nobody waiting any more (a client that repeats its `message_id` gets it
   * from the journal, `GET /v1/events` from the outbox): it is abandoned.
   */
  async resendAfterRestart(options: { include?: (row: OutboxRow) => boolean } = {}): Promise<void> {
    const now = this.deps.clock.now();
    const resend: OutboxRow[] = [];
    for (const row of await this.deps.journal.unsentOutbox()) {
      if (options.include && !options.include(row)) continue;
      const policy = this.policyOf(row.channel);
      const fresh = now - row.createdAt.getTime() < policy.resendWindowMs;
      if (fresh && row.attempts < policy.maxAttempts && this.channels.has(row.channel)) {
        resend.push(row);
      } else {
        await this.deps.journal.abandon(
          row.inboundId,
          row.part,
          fresh ? "no channel to resend on" : "unconfirmed before a restart",
        );
      }
    }
    if (resend.length > 0) this.deps.logger.warn("reply-resend", { parts: resend.length });
    void this.sendRows(resend);
  }

  /**
   * A cluster's node: sends the parts recorded for a channel it has (of one channel, or of all
   * but HTTP, whose parts each node sends itself) that no one here is sending, recorded at least
   * `olderThanMs` ago: those another node recorded without the channel, woken for (`handOff`)
   * or found by the sweep.
   */
  async sendUnsent(options: { channel?: string; olderThanMs?: number } = {}): Promise<void> {
    const now = this.deps.clock.now();
    const rows = (await this.deps.journal.unsentOutbox()).filter(
      (row) =>
        row.channel !== "http" &&
        this.channels.has(row.channel) &&
        (options.channel === undefined || row.channel === options.channel) &&
        !this.sending.has(row.id) &&
        now - row.createdAt.getTime() >= (options.olderThanMs ?? 0),
    );
    if (rows.length > 0) this.deps.logger.debug("reply-send-unsent", { parts: rows.length });
    await this.sendRows(rows);
  }

  private policyOf(channelName: string): DeliveryPolicy {
    return this.channels.get(channelName)?.delivery ?? DEFAULT_DELIVERY;
  }

  private channelOf(chatId: ChatId): string {
    return this.deps.registry.get(chatId)?.channel ?? "http";
  }

  private async sendRows(rows: readonly OutboxRow[]): Promise<void> {
    const { cluster } = this.deps;
    if (cluster) {
      const elsewhere = new Set(
        rows.filter((row) => !this.channels.has(row.channel)).map((row) => row.channel),
      );
      for (const channel of elsewhere) void cluster.handOff(channel);
      if (elsewhere.size > 0) rows = rows.filter((row) => !elsewhere.has(row.channel));
    }
    // Parts of one reply go out in order; a failed part holds back the ones after it.
    for (const row of rows) {
      if (this.sending.has(row.id)) return;
      this.sending.add(row.id);
      let sent: boolean;
      try {
        sent = await this.sendRow(row);
      } finally {
        this.sending.delete(row.id);
      }
      if (!sent) return;
    }
  }

  private async sendRow(row: OutboxRow, attempt = row.attempts): Promise<boolean> {
    const { journal, metrics, logger } = this.deps;
    const channel = this.channels.get(row.channel);
    try {
      if (!channel)
        throw new DispatchError("channel_unavailable", `Channel ${row.channel} is not running`);
      await channel.send(row.chatId as ChatId, row.text, row.id);
      await journal.markSent(row.inboundId, row.part);
      metrics.repliesSent.inc({ channel: row.channel, outcome: "sent" });
      // Debug, as every line a warm turn would log: an info line per reply cost ~0.4 ms of the
      // daemon's main thread (serialised, written to stdout and the log file at once).
      logger.debug("reply-send", {
        chatId: row.chatId,
        channel: row.channel,
        part: row.part,
        characters: row.text.length,
      });
      return true;
    } catch (error) {
      metrics.repliesSent.inc({ channel: row.channel, outcome: "failed" });
      const cause = describeError(error);
      await journal.markSendFailed(row.inboundId, row.part, cause);
      const policy = this.policyOf(row.channel);
      if (attempt + 1 >= policy.maxAttempts) {
        await journal.abandon(
          row.inboundId,
          row.part,
          `gave up after ${policy.maxAttempts} attempts: ${cause}`,
        );
        logger.error("reply-send-abandoned", { chatId: row.chatId, channel: row.channel, cause });
        return false;
      }
      const delayMs = Math.min(policy.maxDelayMs, 1_000 * 2 ** attempt);
      logger.warn("reply-send-retry", {
        chatId: row.chatId,
        channel: row.channel,
        delayMs,
        cause,
      });
      await new Promise<void>((resolve) => this.deps.clock.after(delayMs, resolve));
      return this.sendRow(row, attempt + 1);
    }
  }

  private async sendUnrecorded(
    chatId: ChatId,
    channelName: string,
    parts: readonly string[],
  ): Promise<void> {
    const channel = this.channels.get(channelName);
    for (const part of parts) {
      try {
        await channel?.send(chatId, part);
      } catch (error) {
        this.deps.logger.error("reply-send-failed", { chatId, cause: describeError(error) });
        return;
      }
    }
  }
}
