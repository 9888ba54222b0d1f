import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { InboundMessage, SinkOutcome } from "../../../src/channels/channel.js";
import {
  createSignalChannel,
  SIGNAL_MAX_MESSAGE_LENGTH,
  type SignalChannel,
} from "../../../src/channels/signal/signal-channel.js";
import { splitMessage } from "../../../src/channels/split-message.js";
import { systemClock } from "../../../src/utils/clock.js";
import { freePort } from "../../support/daemon-process.js";
import type { ChatId } from "../../../src/utils/ids.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { startSignalCliStandIn, type SignalCliStandIn } from "../../support/signal-cli-stand-in.js";
import { directText, groupText, type Sender } from "../../support/signal-envelopes.js";

/**
 * The channel against a stand-in of signal-cli's HTTP daemon (a real HTTP server speaking its
 * event stream and JSON-RPC) and a recording sink in place of the journal.
 */
const ACCOUNT = "+15550000000";
const JOHN: Sender = { number: "+15551234567", uuid: "0e1a2b3c-4d5e-4f60-8172-839405a6b7c8" };
const GROUP_ID = "+bE4U3zEhCjHKSaPzWImMpnCbU8A1r0/Pmpi+EfPWms=";

let signalCli: SignalCliStandIn;
let channel: SignalChannel | undefined;
let received: { message: InboundMessage; cursor: string | undefined }[];
let outcome: SinkOutcome | "fail";
const logger = createMemoryLogger();

beforeEach(async () => {
  signalCli = await startSignalCliStandIn({ account: ACCOUNT });
  received = [];
  outcome = "accepted";
});

afterEach(async () => {
  await channel?.stop();
  channel = undefined;
  await signalCli.close();
});

async function startChannel(
  options: { account?: string; url?: string; connect?: boolean } = {},
): Promise<SignalChannel> {
  channel = createSignalChannel({
    config: {
      enabled: true,
      url: options.url ?? signalCli.url,
      account: options.account ?? ACCOUNT,
    },
    logger,
    clock: systemClock,
    streamBackoffMs: 20,
  });
  await channel.start((message, sinkOptions) => {
    if (outcome === "fail") return Promise.reject(new Error("journal unwritable"));
    received.push({ message, cursor: sinkOptions?.cursor });
    return Promise.resolve(outcome);
  });
  if (options.connect !== false) await signalCli.whenConnected();
  return channel;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const typingCalls = () => signalCli.calls().filter((call) => call.method === "sendTyping");

describe("the Signal channel", () => {
  it("hands each message over with its id as the cursor, and sends replies to the right target", async () => {
    await startChannel();
    signalCli.push(directText(JOHN, "hello", 1_765_000_000_001));
    signalCli.push(groupText(JOHN, GROUP_ID, "Family", "hi all", 1_765_000_000_002));
    await until(() => received.length === 2, "two messages");
    expect(received.map(({ message }) => message.chatId)).toEqual([
      JOHN.number,
      "signal-group:-bE4U3zEhCjHKSaPzWImMpnCbU8A1r0_Pmpi-EfPWms=",
    ]);
    expect(received[0]!.cursor).toBe(`${JOHN.uuid}:1765000000001`);

    await channel!.send(JOHN.number as ChatId, "a reply");
    await channel!.send(received[1]!.message.chatId as ChatId, "a group reply");
    expect(signalCli.sends()).toEqual([
      { account: ACCOUNT, recipient: [JOHN.number], message: "a reply" },
      { account: ACCOUNT, groupId: GROUP_ID, message: "a group reply" },
    ]);
  });

  it("shows the typing indicator from an accepted message until its chat's turn ends", async () => {
    await startChannel();
    signalCli.push(directText(JOHN, "think hard"));
    await until(() => typingCalls().length === 1, "typing start");
    expect(typingCalls()[0]!.params).toEqual({ account: ACCOUNT, recipient: [JOHN.number] });
    channel!.answer!({
      chatId: JOHN.number as ChatId,
      answers: [1],
      agentSessionId: "s",
      text: null,
    });
    await until(() => typingCalls().length === 2, "typing stop");
    expect(typingCalls()[1]!.params).toEqual({
      account: ACCOUNT,
      recipient: [JOHN.number],
      stop: true,
    });
  });

  it("shows no typing indicator for a message refused or answered before", async () => {
    await startChannel();
    outcome = "refused";
    signalCli.push(directText(JOHN, "from a stranger"));
    outcome = "answered-before";
    signalCli.push(directText({ ...JOHN, uuid: "11111111-2222-4333-8444-555555555555" }, "again"));
    await until(() => received.length === 2, "both messages");
    // One more accepted message shows the indicator: had the first two shown it, it would be 3.
    outcome = "accepted";
    signalCli.push(directText({ ...JOHN, number: "+15557654321" }, "accepted"));
    await until(() => typingCalls().length >= 1, "typing for the accepted one");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(typingCalls().map((call) => call.params.recipient)).toEqual([["+15557654321"]]);
  });

  it("hands a message signal-cli sends twice over once", async () => {
    await startChannel();
    const envelope = directText(JOHN, "once only");
    signalCli.push(envelope);
    signalCli.push(envelope);
    signalCli.push(directText(JOHN, "next"));
    await until(() => received.length === 2, "two messages");
    expect(received.map(({ message }) => message.text)).toEqual(["once only", "next"]);
  });

  it("reconnects a stream cut mid-burst and hands every message over once, none half", async () => {
    await startChannel();
    signalCli.cutStreamAfter(2);
    const texts = Array.from({ length: 6 }, (_, index) => `burst ${index}`);
    for (const text of texts) signalCli.push(directText(JOHN, text));
    await until(() => received.length === texts.length, "the whole burst");
    expect(received.map(({ message }) => message.text)).toEqual(texts);
    expect(signalCli.connections()).toBe(2);
    expect(logger.records.some((record) => record.message === "signal-stream-reconnect")).toBe(
      true,
    );
    // The half-written event was dropped at the cut, not read as a (broken) event.
    expect(logger.records.some((record) => record.message === "signal-event-unreadable")).toBe(
      false,
    );
  });

  it("tries a message the sink could not record again, until it is recorded", async () => {
    await startChannel();
    outcome = "fail";
    signalCli.push(directText(JOHN, "keep trying"));
    await until(
      () => logger.records.some((record) => record.message === "signal-message-record-failed"),
      "a failed record",
    );
    outcome = "accepted";
    await until(() => received.length === 1, "the retry");
    expect(received[0]!.message.text).toBe("keep trying");
  });

  it("refuses to start when signal-cli does not hold the account, naming what it holds", async () => {
    const error = await startChannel({ account: "+15559999999" }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toMatchObject({ code: "signal_account_missing" });
    expect((error as Error).message).toContain("+15559999999");
    expect((error as Error).message).toContain(`it holds ${ACCOUNT}`);
  });

  it("starts against a single-account daemon, where listAccounts does not exist", async () => {
    await signalCli.close();
    signalCli = await startSignalCliStandIn({ account: ACCOUNT, singleAccount: true });
    await startChannel();
    signalCli.push(directText(JOHN, "single"));
    await until(() => received.length === 1, "the message");
  });

  it("starts while signal-cli's daemon is not up yet, and takes messages once it is", async () => {
    await signalCli.close();
    const port = await freePort();
    await startChannel({ url: `http://127.0.0.1:${port}`, connect: false });
    expect(logger.records.some((record) => record.message === "signal-daemon-unreachable")).toBe(
      true,
    );
    signalCli = await startSignalCliStandIn({ account: ACCOUNT, port });
    signalCli.push(directText(JOHN, "finally up"));
    await until(() => received.length === 1, "the message once the daemon is up");
    expect(received[0]!.message.text).toBe("finally up");
  });

  it("fails a send signal-cli refuses with its reason, and names non-Signal chats", async () => {
    await startChannel();
    signalCli.failSends(1);
    await expect(channel!.send(JOHN.number as ChatId, "x")).rejects.toMatchObject({
      code: "signal_rpc_failed",
      message: expect.stringContaining("Failed to send message") as unknown,
    });
    await expect(channel!.send("jane@example.com" as ChatId, "x")).rejects.toMatchObject({
      code: "signal_bad_recipient",
    });
  });

  it("splits replies to parts of at most 2000 characters", () => {
    const reply = Array.from(
      { length: 100 },
      (_, index) => `Sentence number ${index} of a long answer, with some words.`,
    ).join(" ");
    const parts = splitMessage(reply, SIGNAL_MAX_MESSAGE_LENGTH);
    expect(reply.length).toBeGreaterThan(2 * SIGNAL_MAX_MESSAGE_LENGTH);
    expect(parts.length).toBeGreaterThanOrEqual(3);
    for (const part of parts) expect(part.length).toBeLessThanOrEqual(2000);
    expect(parts.join(" ")).toBe(reply);
  });
});
