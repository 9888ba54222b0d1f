/**
 * The reply webhook's road: a recorded reply of an HTTP chat goes to the webhook from the
 * journal's outbox, retried with backoff (1 s doubling, at most 5 min) until it answers 2xx,
 * and sent again after a restart. Without a webhook, an unconfirmed HTTP reply is abandoned at
 * start, as before.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  createHttpReplyChannel,
  WEBHOOK_DELIVERY,
} from "../../../src/channels/http/http-reply-channel.js";
import type { ReplyWebhook } from "../../../src/channels/http/reply-webhook.js";
import { createMetrics } from "../../../src/daemon/metrics.js";
import { ReplySender } from "../../../src/daemon/reply-sender.js";
import type { Journal, ReplyEvent } from "../../../src/store/journal.js";
import { createMemoryRegistry } from "../../../src/store/memory-registry.js";
import { openStateDatabase } from "../../../src/store/sqlite-database.js";
import { createSqliteJournal } from "../../../src/store/sqlite-journal.js";
import { asAgentSessionId, asChatId } from "../../../src/utils/ids.js";
import { ManualClock } from "../../support/manual-clock.js";
import { createMemoryLogger } from "../../support/memory-logger.js";

const JOHN = asChatId("+15551234567");

let folder: string;
let journal: Journal;
let clock: ManualClock;

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-webhook-road-"));
  clock = new ManualClock();
  journal = openJournal();
});

afterEach(async () => {
  await journal.close();
  await rm(folder, { recursive: true, force: true });
});

function openJournal(): Journal {
  const db = openStateDatabase({ path: join(folder, "journal.db"), logger: createMemoryLogger() });
  return createSqliteJournal({ db, clock });
}

/** A webhook that fails its first `failures` deliveries, and records every one. */
function fakeWebhook(failures: number) {
  const deliveries: { at: number; event: ReplyEvent }[] = [];
  const webhook: ReplyWebhook = {
    deliver: (event) => {
      deliveries.push({ at: clock.now(), event });
      return deliveries.length <= failures
        ? Promise.reject(new Error("the receiver answered 500"))
        : Promise.resolve();
    },
  };
  return { webhook, deliveries };
}

function start(webhook?: ReplyWebhook) {
  const http = createHttpReplyChannel({
    logger: createMemoryLogger(),
    ...(webhook ? { webhook, replyEvent: (id: number) => journal.replyEvent(id) } : {}),
  });
  const sender = new ReplySender({
    journal,
    registry: createMemoryRegistry(),
    metrics: createMetrics(),
    clock,
    logger: createMemoryLogger(),
  });
  sender.addChannel(http);
  return sender;
}

async function record(externalId: string): Promise<number> {
  const { id } = await journal.recordInbound({
    channel: "http",
    chatId: JOHN,
    text: `hello ${externalId}`,
    externalId,
    receivedAt: new Date(clock.now()),
  });
  await journal.markDelivered(id);
  return id;
}

function reply(recordIds: number[], text: string) {
  return {
    chatId: JOHN,
    agentSessionId: asAgentSessionId("session-1"),
    messageIds: recordIds.map((id) => `message-${id}`),
    recordIds,
    text,
    isError: false,
    totalCostUsd: 0,
    durationMs: 5,
  };
}

/** Lets every promise that can settle now settle (the sends are async). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

async function advance(ms: number): Promise<void> {
  clock.advance(ms);
  await settle();
  await settle();
}

describe("the reply webhook's delivery from the outbox", () => {
  it("retries a failing webhook with doubling waits until it answers, then marks the part sent", async () => {
    const { webhook, deliveries } = fakeWebhook(3);
    const sender = start(webhook);
    const a = await record("client-a");
    const b = await record("client-b");
    const started = clock.now();
    await sender.onReply(reply([a, b], "the answer"));
    await settle();
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]!.event).toMatchObject({
      chatId: JOHN,
      text: "the answer",
      messageIds: ["client-a", "client-b"],
      part: 0,
      parts: 1,
    });
    await advance(999);
    expect(deliveries).toHaveLength(1);
    await advance(1);
    await advance(2_000);
    await advance(4_000);
    expect(deliveries.map((delivery) => delivery.at - started)).toEqual([0, 1_000, 3_000, 7_000]);
    expect(await journal.unsentOutbox()).toEqual([]);
    expect((await journal.counts()).outbox.sent).toBe(1);
    await advance(60 * 60_000);
    expect(deliveries).toHaveLength(4);
  });

  it("waits at most five minutes between attempts, and keeps trying for about a day", async () => {
    const { webhook, deliveries } = fakeWebhook(Number.POSITIVE_INFINITY);
    const sender = start(webhook);
    await sender.onReply(reply([await record("x")], "hello"));
    await settle();
    for (let step = 0; step < 12; step += 1) await advance(5 * 60_000);
    const gaps = deliveries.slice(1).map((delivery, index) => delivery.at - deliveries[index]!.at);
    expect(Math.max(...gaps)).toBe(5 * 60_000);
    expect(await journal.unsentOutbox()).toHaveLength(1);
    expect(WEBHOOK_DELIVERY.maxAttempts * WEBHOOK_DELIVERY.maxDelayMs).toBeGreaterThanOrEqual(
      24 * 60 * 60_000,
    );
  });

  it("sends a part left unconfirmed by a crash again at start, to the webhook", async () => {
    const id = await record("before-crash");
    await journal.markAnswered([id], {
      channel: "http",
      chatId: JOHN,
      parts: ["recorded, not sent"],
    });
    clock.advance(60 * 60_000);
    const { webhook, deliveries } = fakeWebhook(0);
    await start(webhook).resendAfterRestart();
    await settle();
    expect(deliveries.map((delivery) => delivery.event.messageIds)).toEqual([["before-crash"]]);
    expect((await journal.counts()).outbox.sent).toBe(1);
  });

  it("abandons an unconfirmed HTTP part at start when there is no webhook, as before", async () => {
    const id = await record("nobody-waits");
    await journal.markAnswered([id], {
      channel: "http",
      chatId: JOHN,
      parts: ["recorded, not sent"],
    });
    await start().resendAfterRestart();
    await settle();
    expect((await journal.counts()).outbox.abandoned).toBe(1);
  });

  it("abandons a webhook part older than a day at start", async () => {
    const id = await record("too-old");
    await journal.markAnswered([id], { channel: "http", chatId: JOHN, parts: ["stale"] });
    clock.advance(24 * 60 * 60_000);
    const { webhook, deliveries } = fakeWebhook(0);
    await start(webhook).resendAfterRestart();
    await settle();
    expect(deliveries).toEqual([]);
    expect((await journal.counts()).outbox.abandoned).toBe(1);
  });
});
