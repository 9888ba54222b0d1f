import { describe, expect, it } from "vitest";
import { JOINED_PERSON } from "../../../src/core/person-sessions.js";
import type { Delivery } from "../../../src/core/session-manager.js";
import type { TurnReply } from "../../../src/core/session.js";
import { createMemoryRegistry } from "../../../src/store/memory-registry.js";
import { asChatId, type ChatId } from "../../../src/utils/ids.js";
import { FakeAgent } from "../../support/fake-agent.js";
import { fakeSessionDisk } from "../../support/fake-session-disk.js";
import { ManualClock } from "../../support/manual-clock.js";
import { startTestManager } from "../../support/test-manager.js";

const PHONE = asChatId("+15551234567");
const EMAIL = asChatId("john@example.com");
const JANE = asChatId("+15559876543");

/** A manager whose people are `people` (mutable: a test adds a handle as contacts.json would). */
function setup(people: ChatId[][] | undefined) {
  const clock = new ManualClock();
  const registry = createMemoryRegistry();
  const replies: TurnReply[] = [];
  const interims: ChatId[] = [];
  const disk = fakeSessionDisk(registry);
  const agent = new FakeAgent();
  const manager = startTestManager({
    agent,
    registry,
    clock,
    folders: disk.folders,
    archive: disk.archive,
    onReply: (reply) => replies.push(reply),
    sendInterim: (chatId) => {
      interims.push(chatId);
      return Promise.resolve();
    },
    ...(people
      ? { personOf: (chatId: ChatId) => people.find((person) => person.includes(chatId)) }
      : {}),
    random: () => 0,
  });
  return { manager, agent, registry, replies, interims, disk };
}

function delivery(
  chatId: ChatId,
  text: string,
  channel: string,
  contactName = "John Doe",
): Delivery {
  return { chatId, text, contactName, tier: "favorite", chatKind: "individual", channel };
}

describe("SessionManager: one session per person", () => {
  it("gives a person's handles one session, and answers each on the handle it came from", async () => {
    const { manager, agent, registry } = setup([[PHONE, EMAIL]]);

    const first = await manager.deliver(delivery(PHONE, "remember mango", "imessage"));
    const second = await manager.deliver(delivery(EMAIL, "what was the word?", "email"));

    // One conversation heard both: the second reply counts the first message.
    expect(agent.conversations).toHaveLength(1);
    expect(second.text).toBe("reply 2: what was the word?");
    expect(first.replyTo).toEqual({ chatId: PHONE, channel: "imessage" });
    expect(second.replyTo).toEqual({ chatId: EMAIL, channel: "email" });
    // One registry entry per chat id, both pointing at the one session.
    const phone = registry.get(PHONE)!;
    const email = registry.get(EMAIL)!;
    expect(email.session_name).toBe(phone.session_name);
    expect(email.session_id).toBe(phone.session_id);
    expect(email.channel).toBe("email");
    expect(phone.channel).toBe("imessage");
    // Either handle shows the one live session.
    expect(manager.status(EMAIL)?.state).toBe("idle");
    expect(manager.status(PHONE)?.live?.pid).toBe(manager.status(EMAIL)?.live?.pid);
    expect(manager.chatsOfSession(EMAIL).sort()).toEqual([EMAIL, PHONE].sort());
  });

  it("keeps a new session id on every chat of the session after a restart by either handle", async () => {
    const { manager, agent, registry } = setup([[PHONE, EMAIL]]);
    await manager.deliver(delivery(PHONE, "hello", "imessage"));
    await manager.deliver(delivery(EMAIL, "hello again", "email"));

    await manager.restart(EMAIL);

    // Stopped and resumed: still one live conversation, the same one for both handles.
    expect(agent.conversations.filter((conversation) => !conversation.closed)).toHaveLength(1);
    expect(registry.get(PHONE)?.session_id).toBe(registry.get(EMAIL)?.session_id);
    const reply = await manager.deliver(delivery(PHONE, "still there?", "imessage"));
    expect(reply.text).toBe("reply 3: still there?");
  });

  it("forgets a person's session whole when one handle is forgotten", async () => {
    const { manager, registry } = setup([[PHONE, EMAIL]]);
    await manager.deliver(delivery(PHONE, "hello", "imessage"));
    await manager.deliver(delivery(EMAIL, "hello", "email"));

    expect(await manager.forget(EMAIL)).toBe("/archive/john-doe");

    expect(registry.get(PHONE)).toBeUndefined();
    expect(registry.get(EMAIL)).toBeUndefined();
    const reply = await manager.deliver(delivery(PHONE, "who am I?", "imessage"));
    expect(reply.text).toBe("reply 1: who am I?");
    expect(registry.get(PHONE)?.session_name).toBe("john-doe-2");
  });

  it('keeps one session per chat without personOf (sessionScope "chat")', async () => {
    const { manager, agent, registry } = setup(undefined);
    await manager.deliver(delivery(PHONE, "remember mango", "imessage"));
    const reply = await manager.deliver(delivery(EMAIL, "what was the word?", "email"));

    expect(agent.conversations).toHaveLength(2);
    expect(reply.text).toBe("reply 1: what was the word?");
    expect(registry.get(EMAIL)?.session_name).not.toBe(registry.get(PHONE)?.session_name);
  });

  it("joins a handle added to a contact to the person's session from its next message", async () => {
    const people: ChatId[][] = [[PHONE]];
    const { manager, agent, registry } = setup(people);
    await manager.deliver(delivery(PHONE, "remember mango", "imessage"));
    await manager.deliver(delivery(EMAIL, "hi from email", "email", "John Doe"));
    const ownSession = registry.get(EMAIL)!;
    expect(ownSession.session_name).not.toBe(registry.get(PHONE)?.session_name);

    people[0]!.push(EMAIL); // contacts.json now lists the email as John's
    const reply = await manager.deliver(delivery(EMAIL, "what was the word?", "email"));

    // The person's conversation (which heard "mango") answered; the email's own one is closed.
    expect(reply.text).toBe("reply 2: what was the word?");
    expect(agent.conversations[1]?.closed).toBe(true);
    const joined = registry.get(EMAIL)!;
    expect(joined.session_name).toBe(registry.get(PHONE)?.session_name);
    expect(joined.session_id).toBe(registry.get(PHONE)?.session_id);
    expect(joined.previous_session_ids).toMatchObject([
      {
        session_id: ownSession.session_id,
        reason: JOINED_PERSON,
        session_name: ownSession.session_name,
      },
    ]);
  });

  it("sends the agent's interim messages to the handle that wrote last", async () => {
    const { manager, agent, interims } = setup([[PHONE, EMAIL]]);
    await manager.deliver(delivery(PHONE, "hello", "imessage"));
    await manager.deliver(delivery(EMAIL, "hello", "email"));
    await agent.last.options.chatTools?.sendMessage("one moment");
    expect(interims).toEqual([EMAIL]);
  });

  it("never puts two people in one session", async () => {
    const { manager, agent, registry } = setup([[PHONE, EMAIL], [JANE]]);
    await manager.deliver(delivery(PHONE, "hello", "imessage"));
    await manager.deliver(delivery(JANE, "hello", "imessage", "Jane"));
    expect(agent.conversations).toHaveLength(2);
    expect(registry.get(JANE)?.session_name).toBe("jane");
  });
});
