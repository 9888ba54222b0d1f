/**
 * The ledger carries each message's record ids (the journal's, `Delivery.recordIds`) to the turn
 * that answers it: the reply path finds the rows to answer there, not in a map of its own.
 */
import { describe, expect, it } from "vitest";
import { MessageLedger } from "../../../src/core/message-ledger.js";
import { asAgentSessionId, asChatId } from "../../../src/utils/ids.js";
import type { TurnReply } from "../../../src/core/session.js";

const JOHN = asChatId("+15551234567");

function turn(messageIds: string[]): TurnReply {
  return {
    chatId: JOHN,
    agentSessionId: asAgentSessionId("session-1"),
    messageIds,
    text: "the answer",
    isError: false,
    totalCostUsd: 0,
    durationMs: 1,
  };
}

describe("MessageLedger record ids", () => {
  it("gives a turn the record ids of every message it answers, to its caller and its waiters", async () => {
    const ledger = new MessageLedger();
    const first = ledger.add(JOHN, { id: "m-1", text: "one" }, [1]);
    // A reminder after a restart stands for two rows.
    const reminder = ledger.add(JOHN, { id: "m-2", text: "two and three" }, [2, 3]);
    const later = ledger.add(JOHN, { id: "m-4", text: "four" }, [4]);

    // One turn answered the first two (the second was steered into it).
    const settled = ledger.settle(["m-1", "m-2"], turn(["m-1", "m-2"]));

    expect(settled.recordIds).toEqual([1, 2, 3]);
    expect(settled.messageIds).toEqual(["m-1", "m-2"]);
    expect((await first).recordIds).toEqual([1, 2, 3]);
    expect((await reminder).recordIds).toEqual([1, 2, 3]);
    expect(ledger.messagesOf(JOHN).map((message) => message.id)).toEqual(["m-4"]);
    expect(ledger.settle(["m-4"], turn(["m-4"])).recordIds).toEqual([4]);
    expect((await later).recordIds).toEqual([4]);
  });

  it("gives none for messages delivered without, or already settled", () => {
    const ledger = new MessageLedger();
    void ledger.add(JOHN, { id: "m-1", text: "one" });

    expect(ledger.settle(["m-1"], turn(["m-1"])).recordIds).toEqual([]);
    expect(ledger.settle(["m-1"], turn(["m-1"])).recordIds).toEqual([]);
  });
});

describe("MessageLedger handles", () => {
  it("sends a turn that answers two of a person's handles to the one that wrote last", () => {
    const ledger = new MessageLedger();
    const email = asChatId("john@example.com");
    void ledger.add(JOHN, { id: "m-1", text: "by phone" }, [1], {
      chatId: JOHN,
      channel: "imessage",
    });
    void ledger.add(JOHN, { id: "m-2", text: "by mail" }, [2], { chatId: email, channel: "http" });
    // Whatever order the agent reports them in, the latest message decides.
    const settled = ledger.settle(["m-2", "m-1"], turn(["m-2", "m-1"]));
    expect(settled.replyTo).toEqual({ chatId: email, channel: "http" });
    expect(settled.recordIds).toEqual([2, 1]);
  });
});
