/**
 * The intake limits where every channel's messages pass: the inbox. A message its sender can
 * send again (HTTP) is refused before it is recorded; a polling channel's is recorded, rejected
 * with the reason, and its cursor moves on. Real SQLite journal, fake agent, manual clock.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { InboundMessage } from "../../../src/channels/channel.js";
import { RateLimitedError } from "../../../src/channels/http/http-errors.js";
import { validateConfig } from "../../../src/config/load-config.js";
import { ManualClock } from "../../support/manual-clock.js";
import { SessionManager } from "../../../src/core/session-manager.js";
import { Inbox } from "../../../src/daemon/inbox.js";
import { createMetrics } from "../../../src/daemon/metrics.js";
import { parseContacts } from "../../../src/identity/contacts.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import type { Journal } from "../../../src/store/journal.js";
import { createMemoryRegistry } from "../../../src/store/memory-registry.js";
import { openStateDatabase } from "../../../src/store/sqlite-database.js";
import { createSqliteJournal } from "../../../src/store/sqlite-journal.js";
import { FakeAgent } from "../../support/fake-agent.js";
import { fakeSessionDisk } from "../../support/fake-session-disk.js";
import { createReplyRoad } from "../../support/reply-road.js";

const JOHN = "+15551234567";
const context = {
  homeDir: "/home/ada",
  platform: "linux" as const,
  totalMemoryBytes: 8 * 1024 ** 3,
};

let folder: string;
let journal: Journal;
let stops: (() => Promise<void>)[];

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-limits-"));
  const db = openStateDatabase({ path: join(folder, "journal.db"), logger: createMemoryLogger() });
  journal = createSqliteJournal({ db });
  stops = [];
});

afterEach(async () => {
  for (const stop of stops) await stop();
  await journal.close();
  await rm(folder, { recursive: true, force: true });
});

function start(configInput: Record<string, unknown>) {
  const validated = validateConfig({ defaultRegion: "US", ...configInput }, context);
  if (!validated.ok) throw new Error(validated.problems.join("\n"));
  const config = validated.config;
  const contacts = parseContacts(
    { contacts: [{ name: "John Doe", tier: "favorite", handles: [JOHN] }] },
    { knownTiers: Object.keys(config.tiers), defaultRegion: "US" },
  );
  const agent = new FakeAgent();
  const registry = createMemoryRegistry();
  const clock = new ManualClock();
  const logger = createMemoryLogger();
  const replies = createReplyRoad({ journal, registry, clock, logger: createMemoryLogger() });
  const manager = new SessionManager(
    {
      agent,
      registry,
      clock,
      logger,
      ...fakeSessionDisk(registry),
      policyFor: () => ({ allowedTools: [], disallowedTools: [], permissionMode: "dontAsk" }),
      onReply: replies.onReply,
    },
    { healthCheckIntervalMs: 300_000, idleTimeoutMs: 7_200_000, maxConsecutiveErrors: 3 },
  );
  manager.startup();
  stops.push(() => manager.shutdown());
  const inbox = new Inbox({
    manager,
    registry,
    contacts,
    config,
    metrics: createMetrics(),
    clock,
    logger,
    journal,
    hasCredentials: true,
    answeredInRequest: replies.answeredInRequest,
  });
  return { inbox, agent, registry, clock, logger };
}

let counter = 0;
function message(chatId: string, text: string, channel = "http"): InboundMessage {
  counter += 1;
  return { channel, chatId, text, externalId: `m-${counter}`, receivedAt: new Date() };
}

async function refusalOf(promise: Promise<unknown>): Promise<RateLimitedError> {
  const error = await promise.then(
    () => undefined,
    (cause: unknown) => cause,
  );
  expect(error).toBeInstanceOf(RateLimitedError);
  return error as RateLimitedError;
}

describe("the per-chat rate limit", () => {
  it("gives one number one budget however it is written (regression: four spellings got four budgets)", async () => {
    const { inbox, clock } = start({ messagesPerChatPerMinute: 4 });
    for (const spelling of [JOHN, "(555) 123-4567", "+1 555 123 4567", "15551234567"]) {
      await inbox.submit(message(spelling, `hi as ${spelling}`), { wait: true });
    }
    const refused = await refusalOf(inbox.submit(message("555.123.4567", "fifth"), { wait: true }));
    expect(refused.code).toBe("rate_limited");
    expect(refused.message).toContain(`Chat ${JOHN} sent more than 4 messages a minute`);
    expect(refused.retryAfterMs).toBe(15_000);
    // Refused before it was recorded: the client sends it again later, under the same id.
    expect(await journal.findByExternalId("http", `m-${counter}`)).toBeUndefined();
    clock.advance(15_000);
    const later = await inbox.submit(message(JOHN, "again"), { wait: true });
    expect(later.reply).toContain("again");
  });

  it("rejects a polled message beyond the budget in the journal, and lets the channel read on", async () => {
    const { inbox, agent, logger } = start({ messagesPerChatPerMinute: 2 });
    const polled = [
      message(JOHN, "plums", "imessage"),
      message(JOHN, "pears", "imessage"),
      message(JOHN, "kumquats", "imessage"),
      message("jane@example.com", "figs", "imessage"),
    ];
    let cursor = 0;
    for (const inbound of polled) {
      cursor += 1;
      // Resolves for the refused one too: the channel must not stop at it.
      await inbox.sink(inbound, { cursor: String(cursor) });
    }
    expect(await journal.cursor("imessage")).toBe("4");
    const rejected = (await journal.findByExternalId("imessage", polled[2]!.externalId!))!;
    expect(rejected).toMatchObject({ status: "rejected", errorCode: "rate_limited" });
    expect(rejected.errorMessage).toContain(`Chat ${JOHN} sent more than 2 messages a minute`);
    expect(logger.records).toContainEqual(
      expect.objectContaining({
        level: "warn",
        message: "message-reject",
        fields: expect.objectContaining({ code: "rate_limited" }) as unknown,
      }),
    );
    const told = agent.conversations.flatMap((conversation) =>
      conversation.inputs.map((input) => input.text),
    );
    expect(told.join("\n")).not.toContain("kumquats");
    // A redelivery of the rejected message is refused again, quietly; it is never replayed.
    await inbox.sink(polled[2]!, { cursor: "4" });
    expect((await journal.findByExternalId("imessage", polled[2]!.externalId!))?.status).toBe(
      "rejected",
    );
    expect((await journal.pendingInbound()).map((row) => row.externalId)).not.toContain(
      polled[2]!.externalId,
    );
  });

  it("does not count a polled message again when the channel redelivers it (regression: a redelivered row already in the journal could be rejected)", async () => {
    const { inbox, agent } = start({ messagesPerChatPerMinute: 1 });
    // Recorded by an earlier run and not answered yet: the channel hands it over again.
    const earlier = message(JOHN, "recorded before", "imessage");
    await journal.recordInbound(earlier, { cursor: "1" });
    await inbox.sink(message(JOHN, "uses the budget", "imessage"), { cursor: "2" });
    await inbox.sink(earlier, { cursor: "2" });
    expect((await journal.findByExternalId("imessage", earlier.externalId!))?.status).not.toBe(
      "rejected",
    );
    await expect
      .poll(() =>
        agent.conversations
          .flatMap((conversation) => conversation.inputs.map((input) => input.text))
          .join(),
      )
      .toContain("recorded before");
  });
});

describe("the bound on new strangers", () => {
  it("takes the bound of new unknown chats a minute; the rest get too_many_new_chats and leave no trace", async () => {
    const { inbox, registry, clock } = start({
      unknownSenders: "respond",
      newUnknownChatsPerMinute: 3,
    });
    const strangers = Array.from({ length: 8 }, (_unused, index) => `s${index}@example.com`);
    const results = await Promise.allSettled(
      strangers.map((chatId) => inbox.submit(message(chatId, "hello"), { wait: true })),
    );
    expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(3);
    const refused = results.flatMap((result) =>
      result.status === "rejected" ? [result.reason as RateLimitedError] : [],
    );
    expect(refused).toHaveLength(5);
    for (const error of refused) {
      expect(error.code).toBe("too_many_new_chats");
      expect(error.retryAfterMs).toBe(60_000);
    }
    expect(registry.size).toBe(3);

    // A contact is never counted, and a stranger already taken keeps being answered.
    await inbox.submit(message(JOHN, "hi"), { wait: true });
    await inbox.submit(message(strangers[0]!, "me again"), { wait: true });
    await refusalOf(inbox.submit(message("late@example.com", "hello"), { wait: true }));
    expect(registry.size).toBe(4);

    clock.advance(60_000);
    await inbox.submit(message("late@example.com", "hello"), { wait: true });
    expect(registry.size).toBe(5);
  });

  it("rejects a polled new stranger beyond the bound in the journal, with the reason", async () => {
    const { inbox, registry } = start({
      unknownSenders: "respond",
      newUnknownChatsPerMinute: 1,
    });
    await inbox.sink(message("first@example.com", "hello", "imessage"), { cursor: "1" });
    const second = message("second@example.com", "hello", "imessage");
    await inbox.sink(second, { cursor: "2" });
    expect(await journal.cursor("imessage")).toBe("2");
    expect(await journal.findByExternalId("imessage", second.externalId!)).toMatchObject({
      status: "rejected",
      errorCode: "too_many_new_chats",
    });
    expect(registry.size).toBe(1);
  });
});
