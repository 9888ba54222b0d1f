/**
 * The check after each resume: a session that came back with less than dispatch's own copy of
 * its transcript is rebuilt from that copy (a fresh session told the recent exchanges), never
 * left blank, and the rebuild is recorded.
 */
import { describe, expect, it } from "vitest";
import { asChatId, type AgentSessionId } from "../../../src/utils/ids.js";
import { judgeResume } from "../../../src/core/resume-check.js";
import {
  HISTORY_MISSING,
  type Delivery,
  type HandoffReason,
} from "../../../src/core/session-manager.js";
import type { TurnReply } from "../../../src/core/session.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { createMemoryRegistry } from "../../../src/store/memory-registry.js";
import { FakeAgent } from "../../support/fake-agent.js";
import { startTestManager } from "../../support/test-manager.js";

const JOHN = asChatId("+15551234567");

describe("judgeResume", () => {
  it("finds history missing when fewer messages came back than dispatch holds", () => {
    expect(judgeResume({ copied: 6, restored: 2 })).toEqual({ intact: false, missing: 4 });
    expect(judgeResume({ copied: 6, restored: 0 })).toEqual({ intact: false, missing: 6 });
  });

  it("finds it intact when as many or more came back, or there was nothing to bring", () => {
    expect(judgeResume({ copied: 6, restored: 6 })).toEqual({ intact: true });
    expect(judgeResume({ copied: 6, restored: 8 })).toEqual({ intact: true });
    expect(judgeResume({ copied: 0, restored: 0 })).toEqual({ intact: true });
  });
});

interface SetupOptions {
  /** Messages in dispatch's copy of each session; undefined: no copy, resumes go unchecked. */
  copied?: (sessionId: AgentSessionId) => number;
  /** What a resumed conversation of the fake agent reports it came back with. */
  restored?: (sessionId: string) => number;
}

function setup(options: SetupOptions) {
  const { copied } = options;
  const agent = new FakeAgent();
  agent.resumedMessages = options.restored;
  const registry = createMemoryRegistry();
  const logger = createMemoryLogger();
  const replies: TurnReply[] = [];
  const replaced: string[] = [];
  const handoffs: { sessionId: AgentSessionId; reason: HandoffReason }[] = [];
  const manager = startTestManager({
    agent,
    registry,
    logger,
    onReply: (reply) => replies.push(reply),
    handoffFor: (sessionId, reason) => {
      handoffs.push({ sessionId, reason });
      return Promise.resolve("[dispatch handoff] Contact: remember the word cedar");
    },
    ...(copied ? { copiedMessagesOf: (sessionId) => Promise.resolve(copied(sessionId)) } : {}),
    onSessionEvent: (event) => {
      if (event.type === "replace") replaced.push(event.reason);
    },
    random: () => 0,
  });
  return { manager, agent, registry, logger, replies, replaced, handoffs };
}

function delivery(text: string): Delivery {
  return {
    chatId: JOHN,
    text,
    contactName: "John Doe",
    tier: "favorite",
    chatKind: "individual",
    channel: "http",
  };
}

/** A chat with one answered turn whose session was then stopped: its next message resumes it. */
async function stoppedAfterOneTurn(options: SetupOptions) {
  const context = setup(options);
  await context.manager.deliver(delivery("remember the word cedar"));
  await context.manager.stop(JOHN);
  const sessionId = context.registry.get(JOHN)!.session_id!;
  return { ...context, sessionId };
}

describe("the check after each resume", () => {
  it("lets the messages through when the resumed session holds what dispatch's copy holds", async () => {
    const { manager, agent, replaced, sessionId, logger } = await stoppedAfterOneTurn({
      copied: () => 2,
      restored: () => 2,
    });

    const reply = await manager.deliver(delivery("what word?"));

    expect(agent.conversations).toHaveLength(2);
    expect(agent.last.options).toMatchObject({ resume: true, sessionId });
    expect(agent.last.inputs.map((input) => input.text)).toEqual(["what word?"]);
    expect(reply.agentSessionId).toBe(sessionId);
    expect(replaced).toEqual([]);
    expect(logger.records.some((record) => record.message === "session-history-missing")).toBe(
      false,
    );
  });

  it("rebuilds from dispatch's copy when the resumed session came back with fewer messages", async () => {
    const { manager, agent, registry, replies, replaced, handoffs, logger, sessionId } =
      await stoppedAfterOneTurn({ copied: () => 4, restored: () => 2 });

    const reply = await manager.deliver(delivery("what word?"));

    // The short resume never saw the message; a fresh session got the handoff, then the message.
    const [, shortResume, rebuilt] = agent.conversations;
    expect(shortResume!.options.resume).toBe(true);
    expect(shortResume!.inputs).toEqual([]);
    expect(shortResume!.closed).toBe(true);
    expect(rebuilt!.options.resume).toBe(false);
    expect(rebuilt!.inputs.map((input) => input.text)).toEqual([
      "[dispatch handoff] Contact: remember the word cedar",
      "what word?",
    ]);
    expect(handoffs).toEqual([{ sessionId, reason: "history-missing" }]);

    // Answered once, by the rebuilt session, and recorded.
    expect(reply.agentSessionId).toBe(rebuilt!.options.sessionId);
    expect(replies.filter((sent) => sent.messageIds.includes(reply.messageIds[0]!))).toHaveLength(
      1,
    );
    const entry = registry.get(JOHN)!;
    expect(entry.session_id).toBe(rebuilt!.options.sessionId);
    expect(entry.previous_session_ids).toEqual([
      expect.objectContaining({ session_id: sessionId, reason: HISTORY_MISSING }),
    ]);
    expect(replaced).toEqual([HISTORY_MISSING]);
    expect(logger.records).toContainEqual(
      expect.objectContaining({
        level: "warn",
        message: "session-history-missing",
        fields: expect.objectContaining({ copied: 4, restored: 2 }) as unknown,
      }),
    );
  });

  it("rebuilds from dispatch's copy when the agent no longer knows the id at all", async () => {
    const { manager, agent, registry, replaced, handoffs, sessionId } = await stoppedAfterOneTurn({
      copied: () => 2,
    });
    agent.knownSessionIds.clear(); // ~/.claude is gone and the resume finds nothing

    const reply = await manager.deliver(delivery("what word?"));

    expect(reply.isError).toBe(false);
    expect(agent.last.options.resume).toBe(false);
    expect(agent.last.inputs.map((input) => input.text)).toEqual([
      "[dispatch handoff] Contact: remember the word cedar",
      "what word?",
    ]);
    expect(handoffs).toEqual([{ sessionId, reason: "history-missing" }]);
    expect(registry.get(JOHN)!.previous_session_ids).toEqual([
      expect.objectContaining({ session_id: sessionId, reason: HISTORY_MISSING }),
    ]);
    expect(replaced).toEqual([HISTORY_MISSING]);
  });

  it("starts a plain fresh session when the agent does not know the id and no copy holds it", async () => {
    const { manager, agent, registry, handoffs, sessionId } = await stoppedAfterOneTurn({
      copied: () => 0,
    });
    agent.knownSessionIds.clear();

    await manager.deliver(delivery("hello again"));

    expect(agent.last.inputs.map((input) => input.text)).toEqual(["hello again"]);
    expect(handoffs).toEqual([]);
    expect(registry.get(JOHN)!.previous_session_ids).toEqual([
      expect.objectContaining({ session_id: sessionId, reason: "unknown to the agent" }),
    ]);
  });

  it("does not hold a resume back when dispatch keeps no copy to compare with", async () => {
    const { manager, agent, replaced, sessionId } = await stoppedAfterOneTurn({
      restored: () => 0,
    });

    const reply = await manager.deliver(delivery("what word?"));

    expect(reply.agentSessionId).toBe(sessionId);
    expect(agent.conversations).toHaveLength(2);
    expect(replaced).toEqual([]);
  });
});
