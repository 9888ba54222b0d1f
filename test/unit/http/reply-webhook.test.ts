import { describe, expect, it } from "vitest";
import {
  createReplyWebhook,
  signWebhookBody,
  verifyWebhookSignature,
} from "../../../src/channels/http/reply-webhook.js";
import { DispatchError } from "../../../src/utils/errors.js";
import type { ReplyEvent } from "../../../src/store/journal.js";

const SECRET = "webhook-secret-0123456789";
const EVENT: ReplyEvent = {
  id: 7,
  inboundId: 3,
  part: 0,
  parts: 1,
  chatId: "+15551234567",
  text: "hello",
  messageIds: ["m-1"],
  createdAt: new Date("2026-02-07T15:00:00.000Z"),
};

function recordingFetch(status: number) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fetchImpl = ((url: string, init: RequestInit) => {
    calls.push({ url, init });
    return Promise.resolve(new Response(status === 204 ? null : "ok", { status }));
  }) as typeof fetch;
  return { calls, fetchImpl };
}

describe("the webhook signature", () => {
  it("is HMAC-SHA256 of `<timestamp>.<body>` in hex, as openssl computes it", () => {
    // printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'webhook-secret-0123456789'
    expect(signWebhookBody(SECRET, "1700000000", '{"a":1}')).toBe(
      "sha256=b46be92da8d98b9148d7d2f909e797a591600b083e62e63ead756723292b1a50",
    );
  });

  it("verifies only the same secret, timestamp and body", () => {
    const signature = signWebhookBody(SECRET, "1700000000", '{"a":1}');
    expect(verifyWebhookSignature(SECRET, "1700000000", '{"a":1}', signature)).toBe(true);
    expect(verifyWebhookSignature(SECRET, "1700000001", '{"a":1}', signature)).toBe(false);
    expect(verifyWebhookSignature(SECRET, "1700000000", '{"a":2}', signature)).toBe(false);
    expect(verifyWebhookSignature(`${SECRET}x`, "1700000000", '{"a":1}', signature)).toBe(false);
    expect(verifyWebhookSignature(SECRET, "1700000000", '{"a":1}', "sha256=00")).toBe(false);
  });
});

describe("a webhook delivery", () => {
  it("POSTs the reply as JSON with the delivery id, the timestamp and the signature", async () => {
    const { calls, fetchImpl } = recordingFetch(204);
    const webhook = createReplyWebhook({
      url: "http://127.0.0.1:9/hook",
      secret: SECRET,
      timeoutMs: 1000,
      now: () => 1_700_000_000_500,
      fetch: fetchImpl,
    });
    await webhook.deliver(EVENT);
    expect(calls).toHaveLength(1);
    const { url, init } = calls[0]!;
    expect(url).toBe("http://127.0.0.1:9/hook");
    expect(init.method).toBe("POST");
    const headers = init.headers as Record<string, string>;
    const body = init.body as string;
    expect(JSON.parse(body)).toEqual({
      type: "reply",
      id: 7,
      chat_id: "+15551234567",
      message_ids: ["m-1"],
      text: "hello",
      part: 0,
      parts: 1,
      created_at: "2026-02-07T15:00:00.000Z",
    });
    expect(headers["X-Dispatch-Timestamp"]).toBe("1700000000");
    expect(headers["X-Dispatch-Delivery"]).toBe("7");
    expect(
      verifyWebhookSignature(SECRET, "1700000000", body, headers["X-Dispatch-Signature"]!),
    ).toBe(true);
    expect(body).not.toContain(SECRET);
    expect(init.redirect).toBe("manual");
  });

  it("fails on an answer that is not 2xx (a redirect too), and when the receiver cannot be reached", async () => {
    for (const status of [500, 404, 302]) {
      const { fetchImpl } = recordingFetch(status);
      const webhook = createReplyWebhook({
        url: "http://127.0.0.1:9/hook",
        secret: SECRET,
        timeoutMs: 1000,
        now: () => 0,
        fetch: fetchImpl,
      });
      const error = await webhook.deliver(EVENT).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DispatchError);
      expect((error as DispatchError).code).toBe("webhook_failed");
      expect((error as DispatchError).message).toContain(`answered ${status}`);
    }
    const unreachable = createReplyWebhook({
      url: "http://127.0.0.1:9/hook",
      secret: SECRET,
      timeoutMs: 1000,
      now: () => 0,
      fetch: () => Promise.reject(new TypeError("fetch failed")),
    });
    await expect(unreachable.deliver(EVENT)).rejects.toThrow(/could not be reached/);
  });
});
