import { DispatchError } from "../../utils/errors.js";
import type { Logger } from "../../logging/logger.js";
import type { ReplyEvent } from "../../store/journal.js";
import type { Channel, ChannelReply, DeliveryPolicy } from "../channel.js";
import type { ReplyWebhook } from "./reply-webhook.js";

/** What a request waiting for its message's reply gets. */
export interface WaitedReply {
  agentSessionId: string;
  /** The reply; null when the agent chose silence. */
  reply: string | null;
}

/** The HTTP channel's way out, with the requests that wait for a reply (`wait: true`). */
export interface HttpReplyChannel extends Channel {
  /**
   * Resolves with the reply to journal row `recordId` when the reply path hands it over
   * (`answer`); rejects with `agent_error` when the turn failed. Call before the message can be
   * answered.
   */
  waitFor(recordId: number): Promise<WaitedReply>;
  /** Nobody waits for `recordId` any more (the message was refused, or its waiter failed). */
  stopWaiting(recordId: number): void;
  /** The journal rows requests wait for now. */
  waitingFor(): number[];
}

interface Waiter {
  resolve(reply: WaitedReply): void;
  reject(error: Error): void;
  promise: Promise<WaitedReply>;
}

/** iMessage's practical limit per bubble; HTTP clients take long texts whole. */
const HTTP_MAX_MESSAGE_LENGTH = 100_000;

/** Without a webhook nobody waits for a reply after a restart: unconfirmed parts are dropped. */
const WITHOUT_WEBHOOK: DeliveryPolicy = {
  maxAttempts: 5,
  maxDelayMs: Number.POSITIVE_INFINITY,
  resendWindowMs: 0,
};

/** The webhook's: 1 s doubling to 5 min between attempts, for about a day, across restarts. */
export const WEBHOOK_DELIVERY: DeliveryPolicy = {
  maxAttempts: 300,
  maxDelayMs: 5 * 60_000,
  resendWindowMs: 24 * 60 * 60_000,
};

export interface HttpReplyChannelDeps {
  logger: Logger;
  /** `channels.http.webhook`: every recorded reply part is delivered to it. */
  webhook?: ReplyWebhook;
  /** A recorded reply part by its outbox id (`Journal.replyEvent`), for the webhook. */
  replyEvent?: (outboxId: number) => Promise<ReplyEvent | undefined>;
  /** Called after each recorded reply (`answer`): `GET /v1/events` reads the new parts. */
  onReplyRecorded?: () => void;
}

/**
 * HTTP clients get replies in the response of `POST /v1/messages` with `wait: true`: the reply
 * path hands each recorded reply to `answer`, which serves the requests waiting for its journal
 * rows. Every recorded reply part also goes to the reply webhook when one is configured (`send`,
 * retried from the outbox), and to `GET /v1/events` (`onReplyRecorded`). Interim messages of the
 * agent (no outbox row) are logged.
 */
export function createHttpReplyChannel(deps: HttpReplyChannelDeps): HttpReplyChannel {
  const { logger, webhook } = deps;
  const waiters = new Map<number, Waiter>();
  return {
    name: "http",
    maxMessageLength: HTTP_MAX_MESSAGE_LENGTH,
    delivery: webhook === undefined ? WITHOUT_WEBHOOK : WEBHOOK_DELIVERY,
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    // The reply path logs each part it sends (`reply-send`, with its length); the text only here.
    send: async (chatId, text, outboxId) => {
      logger.debug("http-reply-text", { chatId, text });
      if (webhook === undefined || outboxId === undefined) return;
      const event = await deps.replyEvent?.(outboxId);
      // Pruned meanwhile (after 30 days): nothing left to deliver.
      if (event === undefined) return;
      await webhook.deliver(event);
      logger.info("webhook-deliver", { chatId, outboxId });
    },
    answer(reply: ChannelReply) {
      deps.onReplyRecorded?.();
      for (const recordId of reply.answers) {
        const waiter = waiters.get(recordId);
        if (!waiter) continue;
        waiters.delete(recordId);
        if (reply.failure !== undefined) {
          waiter.reject(
            new DispatchError("agent_error", `The agent's turn failed: ${reply.failure}`),
          );
        } else {
          waiter.resolve({ agentSessionId: reply.agentSessionId, reply: reply.text });
        }
      }
    },
    waitFor(recordId) {
      // A second wait for one row (a cluster's node that forwarded it, then took its session
      // over) shares the first: both are answered.
      const earlier = waiters.get(recordId);
      if (earlier) return earlier.promise;
      let waiter!: Waiter;
      const promise = new Promise<WaitedReply>((resolve, reject) => {
        waiter = { resolve, reject, promise: undefined! };
      });
      waiter.promise = promise;
      waiters.set(recordId, waiter);
      return promise;
    },
    stopWaiting(recordId) {
      waiters.delete(recordId);
    },
    waitingFor: () => [...waiters.keys()],
  };
}
