/**
 * The reply webhook (`channels.http.webhook`): each reply part of an HTTP chat, POSTed as JSON to
 * the configured URL and signed with HMAC-SHA256 over the timestamp and the raw body. A delivery
 * that does not answer 2xx in time throws; the reply path (`daemon/reply-sender.ts`) retries it
 * from the journal's outbox with backoff, across restarts, until it does.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { DispatchError, describeError } from "../../utils/errors.js";
import type { ReplyEvent } from "../../store/journal.js";

export const SIGNATURE_HEADER = "X-Dispatch-Signature";
export const TIMESTAMP_HEADER = "X-Dispatch-Timestamp";
export const DELIVERY_HEADER = "X-Dispatch-Delivery";

export interface ReplyWebhookOptions {
  url: string;
  /** The HMAC key; never sent, never logged. */
  secret: string;
  timeoutMs: number;
  /** Epoch milliseconds, for the timestamp header. */
  now: () => number;
  /** `fetch` by default. */
  fetch?: typeof fetch;
}

export interface ReplyWebhook {
  /** Resolves once the URL answered 2xx; throws `webhook_failed` otherwise. */
  deliver(event: ReplyEvent): Promise<void>;
}

/** The JSON a webhook receives, and `GET /v1/events` sends as a `reply` event's data. */
export interface ReplyPayload {
  type: "reply";
  /** The outbox row's id: the same as the event id of `GET /v1/events`. Deduplicate by it. */
  id: number;
  chat_id: string;
  /** The messages this reply answers: their `message_id`, as `POST /v1/messages` returned it. */
  message_ids: string[];
  text: string;
  /** This part, from 0, of `parts` (a reply longer than the channel's limit is split). */
  part: number;
  parts: number;
  created_at: string;
}

export function replyPayload(event: ReplyEvent): ReplyPayload {
  return {
    type: "reply",
    id: event.id,
    chat_id: event.chatId,
    message_ids: event.messageIds,
    text: event.text,
    part: event.part,
    parts: event.parts,
    created_at: event.createdAt.toISOString(),
  };
}

/** `sha256=<hex>` of HMAC-SHA256(secret, `<timestamp>.<raw body>`). */
export function signWebhookBody(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`, "utf8").digest("hex")}`;
}

/** What a receiver does: recompute the signature and compare in constant time. */
export function verifyWebhookSignature(
  secret: string,
  timestamp: string,
  body: string,
  signature: string,
): boolean {
  const expected = Buffer.from(signWebhookBody(secret, timestamp, body));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

export function createReplyWebhook(options: ReplyWebhookOptions): ReplyWebhook {
  const send = options.fetch ?? fetch;
  return {
    async deliver(event) {
      const body = JSON.stringify(replyPayload(event));
      const timestamp = String(Math.floor(options.now() / 1000));
      let response: Response;
      try {
        response = await send(options.url, {
          method: "POST",
          headers: {
            "Content-Type": "application/json",
            [TIMESTAMP_HEADER]: timestamp,
            [SIGNATURE_HEADER]: signWebhookBody(options.secret, timestamp, body),
            [DELIVERY_HEADER]: String(event.id),
          },
          body,
          // A redirect is not an acknowledgment: the body would not follow it.
          redirect: "manual",
          signal: AbortSignal.timeout(options.timeoutMs),
        });
      } catch (error) {
        throw new DispatchError(
          "webhook_failed",
          `The reply webhook ${options.url} could not be reached: ${describeError(error)}. ` +
            "dispatch tries again; check that the receiver runs and answers within " +
            "`channels.http.webhook.timeoutSeconds`.",
          { cause: error },
        );
      }
      // The body is not wanted; reading it frees the connection.
      await response.arrayBuffer().catch(() => undefined);
      if (response.status < 200 || response.status > 299) {
        throw new DispatchError(
          "webhook_failed",
          `The reply webhook ${options.url} answered ${response.status}; dispatch tries again ` +
            "until it answers 2xx.",
        );
      }
    },
  };
}
