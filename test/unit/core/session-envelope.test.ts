import { describe, expect, it } from "vitest";
import { ManualClock } from "../../support/manual-clock.js";
import { asChatId } from "../../../src/utils/ids.js";
import type { Delivery } from "../../../src/core/session-manager.js";
import { readEnvelopes } from "../../../src/identity/read-envelopes.js";
import { createEnvelope } from "../../../src/identity/wrap-message.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { createMemoryRegistry } from "../../../src/store/memory-registry.js";
import { FakeAgent } from "../../support/fake-agent.js";
import { startTestManager } from "../../support/test-manager.js";

/**
 * Issue 17: a session wraps each message in its envelope as it hands it to its agent, saying
 * only what that conversation has not heard; a new conversation (start, restart, resume,
 * replacement) and a compacted one hear everything again.
 */
const JOHN = asChatId("+15551234567");
const MINUTE = 60_000;

function setup() {
  const clock = new ManualClock();
  const agent = new FakeAgent();
  const logger = createMemoryLogger();
  const registry = createMemoryRegistry();
  const manager = startTestManager({
    agent,
    registry,
    clock,
    logger,
    random: () => 0,
  });
  let minute = 0;
  const fromJohn = (text: string, channel = "imessage"): Delivery => ({
    chatId: JOHN,
    text,
    envelope: createEnvelope({
      channel,
      receivedAt: new Date(Date.parse("2026-02-07T14:30:00.000Z") + minute++ * MINUTE),
      sender: { name: "John Doe", handle: JOHN, tier: "favorite" },
    }),
    contactName: "John Doe",
    tier: "favorite",
    chatKind: "individual",
    channel,
  });
  /** The header attributes of each input the agent was given, in order. */
  const headers = () =>
    agent.conversations.flatMap((conversation) =>
      conversation.inputs.map((input) => {
        const opening =
          /^<msg nonce="[a-z2-7]+"((?: [a-z_]+=(?:"(?:[^"\\\n]|\\.)*"|null))*)>\n/.exec(input.text);
        return opening ? [...opening[1]!.matchAll(/ ([a-z_]+)=/g)].map((match) => match[1]) : null;
      }),
    );
  return { manager, agent, logger, fromJohn, headers };
}

const FULL = ["from", "handle", "tier", "channel", "at"];

async function settle(): Promise<void> {
  for (let round = 0; round < 5; round += 1) await new Promise((resolve) => setImmediate(resolve));
}

describe("a session's envelopes", () => {
  it("says the whole header first, then only what changed", async () => {
    const { manager, fromJohn, headers } = setup();
    await manager.deliver(fromJohn("one"));
    await manager.deliver(fromJohn("two"));
    await manager.deliver(fromJohn("three", "http"));
    expect(headers()).toEqual([FULL, ["at"], ["channel", "at"]]);
  });

  it("says everything again after the agent compacted its context", async () => {
    const { manager, agent, logger, fromJohn, headers } = setup();
    await manager.deliver(fromJohn("one"));
    await manager.deliver(fromJohn("two"));
    agent.last.compact();
    await settle();
    await manager.deliver(fromJohn("three"));
    await manager.deliver(fromJohn("four"));
    expect(headers()).toEqual([FULL, ["at"], FULL, ["at"]]);
    expect(logger.records.map((record) => record.message)).toContain("session-compact");
  });

  it("gives its agent, for a compaction, what its conversation heard, until it forgot", async () => {
    const { manager, agent, fromJohn } = setup();
    await manager.deliver(fromJohn("one"));
    const recap = agent.last.options.afterCompaction!;
    expect(recap()).toContain(`from="John Doe" handle="${JOHN}" tier="favorite"`);
    agent.last.compact();
    await settle();
    expect(recap()).toBeUndefined();
  });

  it("says everything again to a restarted session, and keeps each message's marker", async () => {
    const { manager, agent, fromJohn, headers } = setup();
    await manager.deliver(fromJohn("one"));
    agent.autoReply = false;
    const waiting = fromJohn("two");
    const reply = manager.deliver(waiting);
    await settle();
    await manager.restart(JOHN);
    agent.autoReply = true;
    agent.flush();
    await reply;
    // The first conversation heard "one" whole and "two" lean; the restarted one hears "two" whole.
    expect(headers()).toEqual([FULL, ["at"], FULL]);
    const [, lean] = agent.conversations[0]!.inputs;
    const [again] = agent.conversations[1]!.inputs;
    expect(readEnvelopes(lean!.text, undefined).envelopes[0]!.nonce).toBe(waiting.envelope!.nonce);
    expect(readEnvelopes(again!.text, undefined).envelopes[0]).toMatchObject({
      nonce: waiting.envelope!.nonce,
      text: "two",
      from: "John Doe",
      channel: "imessage",
    });
  });

  it("hands a message without an envelope over as it is", async () => {
    const { manager, agent } = setup();
    const { envelope: _envelope, ...plain } = setup().fromJohn("as is");
    await manager.deliver(plain);
    expect(agent.last.inputs.map((input) => input.text)).toEqual(["as is"]);
  });
});
