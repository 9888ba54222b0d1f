/**
 * The HTTP channel's waiting requests (`src/channels/http/http-reply-channel.ts`): a cluster's
 * node may wait twice for one journal row (it forwarded the message, then took its session over),
 * and its router asks which rows are waited for, to look for their replies in the journal.
 */
import { describe, expect, it } from "vitest";
import { createHttpReplyChannel } from "../../../src/channels/http/http-reply-channel.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { asChatId } from "../../../src/utils/ids.js";
import { createMemoryLogger } from "../../support/memory-logger.js";

const CHAT = asChatId("+15551234567");

describe("createHttpReplyChannel: waiting requests", () => {
  it("gives two waits for one row one answer", async () => {
    const channel = createHttpReplyChannel({ logger: createMemoryLogger() });
    const got: unknown[] = [];
    void channel.waitFor(7).then((reply) => got.push(["first", reply]));
    void channel.waitFor(7).then((reply) => got.push(["second", reply]));
    expect(channel.waitingFor()).toEqual([7]);
    channel.answer!({ chatId: CHAT, answers: [7], agentSessionId: "session-1", text: "hi" });
    await new Promise((resolve) => setImmediate(resolve));
    const expected = { agentSessionId: "session-1", reply: "hi" };
    expect(got).toEqual([
      ["first", expected],
      ["second", expected],
    ]);
    expect(channel.waitingFor()).toEqual([]);
  });

  it("rejects both waits of a row whose turn failed with agent_error", async () => {
    const channel = createHttpReplyChannel({ logger: createMemoryLogger() });
    const failures: unknown[] = [];
    for (const wait of [channel.waitFor(7), channel.waitFor(7)]) {
      wait.catch((error: unknown) => failures.push(error));
    }
    channel.answer!({
      chatId: CHAT,
      answers: [7],
      agentSessionId: "session-1",
      text: null,
      failure: "the model is unreachable",
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(failures).toHaveLength(2);
    for (const error of failures) {
      expect(error).toBeInstanceOf(DispatchError);
      expect((error as DispatchError).code).toBe("agent_error");
    }
  });

  it("lists the rows waited for, until each is answered or given up", async () => {
    const channel = createHttpReplyChannel({ logger: createMemoryLogger() });
    expect(channel.waitingFor()).toEqual([]);
    const three = channel.waitFor(3);
    void channel.waitFor(5);
    void channel.waitFor(9);
    expect(channel.waitingFor().sort((a, b) => a - b)).toEqual([3, 5, 9]);
    channel.stopWaiting(5);
    expect(channel.waitingFor().sort((a, b) => a - b)).toEqual([3, 9]);
    // A reply answering several rows serves each that is waited for; others are not listed.
    channel.answer!({ chatId: CHAT, answers: [2, 3], agentSessionId: "s", text: null });
    expect(await three).toEqual({ agentSessionId: "s", reply: null });
    expect(channel.waitingFor()).toEqual([9]);
  });

  it("waits afresh for a row answered before: a new request gets the next answer", async () => {
    const channel = createHttpReplyChannel({ logger: createMemoryLogger() });
    const first = channel.waitFor(4);
    channel.answer!({ chatId: CHAT, answers: [4], agentSessionId: "s", text: "one" });
    expect(await first).toEqual({ agentSessionId: "s", reply: "one" });
    const again = channel.waitFor(4);
    expect(again).not.toBe(first);
    expect(channel.waitingFor()).toEqual([4]);
    channel.answer!({ chatId: CHAT, answers: [4], agentSessionId: "s", text: "two" });
    expect(await again).toEqual({ agentSessionId: "s", reply: "two" });
  });
});
