/**
 * Regression: a message pushed again into the same conversation after a turn failed with an
 * overload went in under the id it had the first time, and the Claude CLI ignores an input id
 * it has seen, so the retry never ran and the message hung until the turn timeout.
 */
import { describe, expect, it } from "vitest";
import { ManualClock } from "../../support/manual-clock.js";
import { asChatId } from "../../../src/utils/ids.js";
import type { TurnReply } from "../../../src/core/session.js";
import { createMemoryRegistry } from "../../../src/store/memory-registry.js";
import { FakeAgent } from "../../support/fake-agent.js";
import { startTestManager } from "../../support/test-manager.js";

const JOHN = asChatId("+15551234567");

async function settle(rounds = 5): Promise<void> {
  for (let round = 0; round < rounds; round += 1) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe("a message retried after an overload", () => {
  it("reaches the same conversation again under a new input id and is answered once", async () => {
    let overloaded = true;
    const agent = new FakeAgent((text, history) =>
      overloaded
        ? { text: "API Error: 529 overloaded_error", isError: true }
        : { text: `reply ${history.length}: ${text}` },
    );
    const clock = new ManualClock();
    const replies: TurnReply[] = [];
    const registry = createMemoryRegistry();
    const manager = startTestManager({
      agent,
      registry,
      clock,
      onReply: (reply) => replies.push(reply),
      random: () => 0.5,
    });

    const delivered = manager.deliver({
      chatId: JOHN,
      text: "tell me about spruce",
      contactName: "John Doe",
      tier: "favorite",
      chatKind: "individual",
      channel: "http",
      messageId: "0b8a6f0e-5d1e-4a40-9d7b-1f1c6e7f0a01",
    });
    await settle();
    expect(replies).toHaveLength(0);
    overloaded = false;
    clock.advance(1_000); // the retry's backoff: at most 1 s on a first failure

    const reply = await delivered;
    expect(reply.isError).toBe(false);
    expect(reply.messageIds).toEqual(["0b8a6f0e-5d1e-4a40-9d7b-1f1c6e7f0a01"]);
    const [first, second] = agent.last.inputs;
    expect(agent.conversations).toHaveLength(1);
    expect(first!.id).toBe("0b8a6f0e-5d1e-4a40-9d7b-1f1c6e7f0a01");
    expect(second!.text).toBe(first!.text);
    expect(second!.id).not.toBe(first!.id);
    expect(replies).toHaveLength(1);
    await manager.shutdown();
  });
});
