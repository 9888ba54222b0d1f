/**
 * The intake limits where every channel's messages pass: the inbox. A message its sender can
 * send again (HTTP) is refused before it is recorded; a polling channel's is recorded, rejected
 * with the reason, and its cursor moves on. Real SQLite journal, fake agent, manual clock.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { InboundMessage } from "../../../src/channels/channel.js";
import { RateLimitedError } from "../../../src/channels/http/http-errors.js";
import { startInbox, testConfig, testContacts, useSqliteJournal } from "../../support/inbox-rig.js";

const JOHN = "+15551234567";

const sqlite = useSqliteJournal("dispatch-limits-");
const stops: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

function start(configInput: Record<string, unknown>) {
  const config = testConfig({ defaultRegion: "US", ...configInput });
  const contacts = testContacts(config, [{ name: "John Doe", tier: "favorite", handles: [JOHN] }], {
    defaultRegion: "US",
  });
  const started = startInbox({ journal: sqlite.journal, config, contacts });
  stops.push(() => started.manager.shutdown());
  return started;
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
    expect(await sqlite.journal.findByExternalId("http", `m-${counter}`)).toBeUndefined();
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
    expect(await sqlite.journal.cursor("imessage")).toBe("4");
    const rejected = (await sqlite.journal.findByExternalId("imessage", polled[2]!.externalId!))!;
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
    expect(
      (await sqlite.journal.findByExternalId("imessage", polled[2]!.externalId!))?.status,
    ).toBe("rejected");
    expect((await sqlite.journal.pendingInbound()).map((row) => row.externalId)).not.toContain(
      polled[2]!.externalId,
    );
  });

  it("does not count a polled message again when the channel redelivers it (regression: a redelivered row already in the journal could be rejected)", async () => {
    const { inbox, agent } = start({ messagesPerChatPerMinute: 1 });
    // Recorded by an earlier run and not answered yet: the channel hands it over again.
    const earlier = message(JOHN, "recorded before", "imessage");
    await sqlite.journal.recordInbound(earlier, { cursor: "1" });
    await inbox.sink(message(JOHN, "uses the budget", "imessage"), { cursor: "2" });
    await inbox.sink(earlier, { cursor: "2" });
    expect(
      (await sqlite.journal.findByExternalId("imessage", earlier.externalId!))?.status,
    ).not.toBe("rejected");
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
    expect(await sqlite.journal.cursor("imessage")).toBe("2");
    expect(await sqlite.journal.findByExternalId("imessage", second.externalId!)).toMatchObject({
      status: "rejected",
      errorCode: "too_many_new_chats",
    });
    expect(registry.size).toBe(1);
  });
});
