/**
 * A message that already stands, unanswered, in a session's context (it reached the transcript
 * before a crash) is given to that session as a reminder, never a second time in full; a session
 * that never saw it (a replacement under a new id) gets the message itself.
 */
import { describe, expect, it } from "vitest";
import { asChatId, type AgentSessionId } from "../../../src/utils/ids.js";
import type { Delivery } from "../../../src/core/session-manager.js";
import { createMemoryRegistry } from "../../../src/store/memory-registry.js";
import { FakeAgent } from "../../support/fake-agent.js";
import { startTestManager } from "../../support/test-manager.js";

const JOHN = asChatId("+15551234567");
const REMINDER = "answer the messages above";

function setup() {
  const agent = new FakeAgent();
  const registry = createMemoryRegistry();
  const manager = startTestManager({
    agent,
    registry,
  });
  return { agent, registry, manager };
}

function delivery(text: string, extra: Partial<Delivery> = {}): Delivery {
  return {
    chatId: JOHN,
    text,
    contactName: "John Doe",
    tier: "favorite",
    chatKind: "individual",
    channel: "http",
    ...extra,
  };
}

describe("a message already in a session's context", () => {
  it("is given to that session as its reminder, and answered by the turn it starts", async () => {
    const { agent, registry, manager } = setup();
    await manager.deliver(delivery("first"));
    const sessionId = registry.get(JOHN)!.session_id as AgentSessionId;
    await manager.stop(JOHN);

    const reply = await manager.deliver(
      delivery("the folded messages", { inContext: { sessionId, reminder: REMINDER } }),
    );

    expect(agent.last.options).toMatchObject({ resume: true, sessionId });
    expect(agent.last.inputs.map((input) => input.text)).toEqual([REMINDER]);
    expect(reply.text).toBe(`reply 2: ${REMINDER}`);
  });

  it("is given in full to a session under another id, which never saw it", async () => {
    const { agent, registry, manager } = setup();
    await manager.deliver(delivery("first"));
    const sessionId = registry.get(JOHN)!.session_id as AgentSessionId;
    await manager.stop(JOHN);
    agent.knownSessionIds.delete(sessionId); // the agent lost it: a fresh session replaces it

    const reply = await manager.deliver(
      delivery("the folded messages", { inContext: { sessionId, reminder: REMINDER } }),
    );

    expect(registry.get(JOHN)!.session_id).not.toBe(sessionId);
    expect(agent.last.inputs.map((input) => input.text)).toEqual(["the folded messages"]);
    expect(reply.text).toBe("reply 1: the folded messages");
  });
});
