import { DispatchError } from "../../utils/errors.js";
import type { Logger } from "../../logging/logger.js";
import type { Channel, ChannelReply } from "../channel.js";

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
}

interface Waiter {
  resolve(reply: WaitedReply): void;
  reject(error: Error): void;
}

/** iMessage's practical limit per bubble; HTTP clients take long texts whole. */
const HTTP_MAX_MESSAGE_LENGTH = 100_000;

/**
 * HTTP clients get replies in the response of `POST /v1/messages` with `wait: true`: the reply
 * path hands each recorded reply to `answer`, which serves the requests waiting for its journal
 * rows. What the agent sends otherwise for an HTTP chat (interim messages, replies nobody waited
 * for) is logged.
 */
export function createHttpReplyChannel(deps: { logger: Logger }): HttpReplyChannel {
  const { logger } = deps;
  const waiters = new Map<number, Waiter>();
  return {
    name: "http",
    maxMessageLength: HTTP_MAX_MESSAGE_LENGTH,
    start: () => Promise.resolve(),
    stop: () => Promise.resolve(),
    // The reply path logs each part it sends (`reply-send`, with its length); the text only here.
    send: (chatId, text) => {
      logger.debug("http-reply-text", { chatId, text });
      return Promise.resolve();
    },
    answer(reply: ChannelReply) {
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
      return new Promise<WaitedReply>((resolve, reject) => {
        waiters.set(recordId, { resolve, reject });
      });
    },
    stopWaiting(recordId) {
      waiters.delete(recordId);
    },
  };
}
