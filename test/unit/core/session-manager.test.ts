import { describe, expect, it } from "vitest";
import { ManualClock } from "../../support/manual-clock.js";
import { asChatId, type ChatId } from "../../../src/utils/ids.js";
import type { Delivery, SessionManagerOptions } from "../../../src/core/session-manager.js";
import type { TurnReply } from "../../../src/core/session.js";
import { TURN_LIMIT_NOTICES } from "../../../src/core/turn-limit.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { createMemoryRegistry } from "../../../src/store/memory-registry.js";
import { FakeAgent } from "../../support/fake-agent.js";
import { fakeSessionDisk } from "../../support/fake-session-disk.js";
import { startTestManager } from "../../support/test-manager.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const JOHN = asChatId("+15551234567");
const JANE = asChatId("+15559876543");

function setup(options: Partial<SessionManagerOptions> = {}, agent = new FakeAgent()) {
  const clock = new ManualClock();
  const registry = createMemoryRegistry();
  const logger = createMemoryLogger();
  const replies: TurnReply[] = [];
  const disk = fakeSessionDisk(registry);
  const { prepared } = disk;
  const manager = startTestManager(
    {
      agent,
      registry,
      clock,
      logger,
      folders: disk.folders,
      archive: disk.archive,
      onReply: (reply) => replies.push(reply),
      random: () => 0,
    },
    options,
  );
  return { manager, agent, clock, registry, logger, replies, prepared, disk };
}

function delivery(chatId: ChatId, text: string, contactName = "John Doe"): Delivery {
  return { chatId, text, contactName, tier: "favorite", chatKind: "individual", channel: "http" };
}

/** Lets the fake agent's setImmediate replies and the manager's promise chains run. */
async function settle(rounds = 5): Promise<void> {
  for (let round = 0; round < rounds; round += 1) {
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe("SessionManager", () => {
  it("creates a session lazily on a chat's first message and registers it durably first", async () => {
    const { manager, agent, registry } = setup();
    expect(agent.conversations).toHaveLength(0);

    const reply = await manager.deliver(delivery(JOHN, "hello"));

    expect(reply.text).toBe("reply 1: hello");
    expect(agent.conversations).toHaveLength(1);
    const entry = registry.get(JOHN)!;
    expect(entry.session_name).toBe("john-doe");
    expect(entry.session_id).toBe(agent.last.options.sessionId);
    expect(agent.last.options.resume).toBe(false);
    expect(agent.last.options.cwd).toBe("/transcripts/john-doe");
    expect(registry.writes).toBeGreaterThanOrEqual(1);
  });

  it("keeps one session per chat: later messages reuse it and see earlier ones", async () => {
    const { manager, agent } = setup();
    await manager.deliver(delivery(JOHN, "one"));
    const second = await manager.deliver(delivery(JOHN, "two"));
    expect(second.text).toBe("reply 2: two");
    expect(agent.conversations).toHaveLength(1);
  });

  it("never opens two sessions when a chat's first messages arrive together", async () => {
    const { manager, agent } = setup();
    const replies = await Promise.all([
      manager.deliver(delivery(JOHN, "a")),
      manager.deliver(delivery(JOHN, "b")),
      manager.deliver(delivery(JOHN, "c")),
    ]);
    expect(agent.conversations).toHaveLength(1);
    expect(replies.map((reply) => reply.text)).toEqual(["reply 1: a", "reply 2: b", "reply 3: c"]);
  });

  it("gives each chat its own session, folder and name", async () => {
    const { manager, agent, registry } = setup();
    await manager.deliver(delivery(JOHN, "hi"));
    const reply = await manager.deliver(delivery(JANE, "hi", "John Doe"));
    expect(reply.text).toBe("reply 1: hi");
    expect(agent.conversations).toHaveLength(2);
    expect(registry.get(JANE)!.session_name).toBe("john-doe-2");
    expect(agent.conversations[0]!.options.sessionId).not.toBe(
      agent.conversations[1]!.options.sessionId,
    );
  });

  it("resumes with the registry's session id after a shutdown and a new manager", async () => {
    const first = setup();
    await first.manager.deliver(delivery(JOHN, "remember"));
    const sessionId = first.registry.get(JOHN)!.session_id;
    await first.manager.shutdown();
    expect(first.agent.last.closed).toBe(true);

    const second = startTestManager({
      agent: first.agent,
      registry: first.registry,
      clock: first.clock,
      logger: first.logger,
    });
    expect(first.agent.conversations).toHaveLength(1); // startup starts nothing

    const reply = await second.deliver(delivery(JOHN, "again"));
    expect(first.agent.last.options.resume).toBe(true);
    expect(first.agent.last.options.sessionId).toBe(sessionId);
    expect(reply.text).toBe("reply 2: again");
    await second.shutdown();
  });

  it("starts fresh when the agent does not know the resume id, keeping the old id and the message", async () => {
    const { manager, agent, registry, logger } = setup();
    await manager.deliver(delivery(JOHN, "first"));
    const oldId = registry.get(JOHN)!.session_id!;
    await manager.stop(JOHN);
    agent.knownSessionIds.delete(oldId); // the transcript was swept

    const reply = await manager.deliver(delivery(JOHN, "after the sweep"));

    expect(reply.text).toBe("reply 1: after the sweep");
    const entry = registry.get(JOHN)!;
    expect(entry.session_id).not.toBe(oldId);
    expect(entry.previous_session_ids.map((previous) => previous.session_id)).toEqual([oldId]);
    expect(agent.last.options.resume).toBe(false);
    expect(logger.records.some((record) => record.message === "session-resume-unknown")).toBe(true);
  });

  it("matches replies to messages and delivers each turn once to the reply handler", async () => {
    const { manager, replies } = setup();
    const reply = await manager.deliver(delivery(JOHN, "hello"));
    expect(replies).toHaveLength(1);
    expect(replies[0]).toBe(reply);
    expect(reply.messageIds).toHaveLength(1);
  });

  it("reaps sessions idle for the timeout and resumes them with context on the next message", async () => {
    const { manager, agent, clock } = setup();
    await manager.deliver(delivery(JOHN, "hello"));
    clock.advance(2 * HOUR - 2 * MINUTE);
    await settle();
    expect(manager.status(JOHN)!.state).toBe("idle");

    clock.advance(3 * MINUTE);
    await settle();
    expect(manager.status(JOHN)!.state).toBe("stopped");
    expect(agent.last.closed).toBe(true);

    const reply = await manager.deliver(delivery(JOHN, "back"));
    expect(agent.conversations).toHaveLength(2);
    expect(agent.last.options.resume).toBe(true);
    expect(reply.text).toBe("reply 2: back");
  });

  it("does not reap a busy session", async () => {
    const { manager, agent, clock } = setup({ turnTimeoutMs: 10 * HOUR });
    agent.autoReply = false;
    const pending = manager.deliver(delivery(JOHN, "slow"));
    await settle();
    clock.advance(3 * HOUR);
    await settle();
    expect(manager.status(JOHN)!.state).toBe("busy");
    agent.flush();
    await expect(pending).resolves.toMatchObject({ text: "reply 1: slow" });
  });

  it("restarts a session whose process died at the next health check, with resume", async () => {
    const { manager, agent, clock } = setup();
    await manager.deliver(delivery(JOHN, "hello"));
    const first = agent.last;
    first.markDead();

    clock.advance(4 * MINUTE);
    await settle();
    expect(agent.conversations).toHaveLength(1);

    clock.advance(1 * MINUTE);
    await settle();
    expect(agent.conversations).toHaveLength(2);
    expect(agent.last.options.resume).toBe(true);
    expect(agent.last.options.sessionId).toBe(first.options.sessionId);
    expect(manager.status(JOHN)!.restarts).toBe(1);
  });

  it("restarts a session after too many consecutive errors", async () => {
    const agent = new FakeAgent((text, history) => ({
      text: `failed ${history.length}`,
      isError: text.startsWith("bad"),
    }));
    const { manager, clock } = setup({}, agent);
    for (const text of ["bad 1", "bad 2", "bad 3"]) {
      const reply = await manager.deliver(delivery(JOHN, text));
      expect(reply.isError).toBe(true);
    }
    clock.advance(5 * MINUTE);
    await settle();
    expect(agent.conversations).toHaveLength(2);
  });

  it("carries unanswered messages into a new session when the loop crashes mid-turn", async () => {
    const { manager, agent, clock } = setup();
    agent.autoReply = false;
    const pending = manager.deliver(delivery(JOHN, "will survive"));
    await settle();
    agent.last.crash();
    await settle();
    expect(manager.status(JOHN)!.state).toBe("failed");

    agent.autoReply = true;
    clock.advance(0); // backoff with random() = 0
    await settle(10);
    const reply = await pending;
    expect(reply.text).toBe("reply 1: will survive");
    expect(agent.conversations).toHaveLength(2);
    expect(agent.last.inputs.map((input) => input.text)).toEqual(["will survive"]);
  });

  it("refuses new messages once shutting down and rejects unanswered ones", async () => {
    const { manager, agent } = setup();
    agent.autoReply = false;
    const pending = manager.deliver(delivery(JOHN, "never answered"));
    await settle();
    await manager.shutdown();
    await expect(pending).rejects.toMatchObject({ code: "shutting_down" });
    await expect(manager.deliver(delivery(JOHN, "late"))).rejects.toMatchObject({
      code: "shutting_down",
    });
  });

  it("forget drops the registry entry and archives the session: the chat starts over under a new name", async () => {
    const { manager, registry, agent, disk } = setup();
    await manager.deliver(delivery(JOHN, "hello"));
    expect(await manager.forget(JOHN)).toBe("/archive/john-doe");
    expect(registry.get(JOHN)).toBeUndefined();
    expect(disk.archived).toEqual(new Set(["john-doe"]));
    const reply = await manager.deliver(delivery(JOHN, "new start"));
    expect(reply.text).toBe("reply 1: new start");
    expect(agent.last.options.resume).toBe(false);
    // Regression (issue 12): the new conversation got the forgotten one's folder.
    expect(registry.get(JOHN)!.session_name).toBe("john-doe-2");
    expect(agent.last.options.cwd).toBe("/transcripts/john-doe-2");
  });

  it("forgetting a chat that is not registered archives nothing", async () => {
    const { manager, disk } = setup();
    expect(await manager.forget(JOHN)).toBeUndefined();
    expect(disk.archived.size).toBe(0);
  });

  it("holds a message that comes during a forget for the new conversation", async () => {
    const { manager, registry, agent } = setup();
    await manager.deliver(delivery(JOHN, "old conversation"));
    const forgetting = manager.forget(JOHN);
    const during = manager.deliver(delivery(JOHN, "during the forget"));
    await forgetting;
    const reply = await during;
    expect(reply.text).toBe("reply 1: during the forget");
    expect(agent.conversations).toHaveLength(2);
    expect(agent.last.options.resume).toBe(false);
    expect(registry.get(JOHN)!.session_name).toBe("john-doe-2");
  });

  it("never gives a new chat a name whose folder is on disk without a registry entry", async () => {
    // Regression (issue 12): a folder left behind was handed to the next chat of that name.
    const { manager, registry, disk } = setup();
    disk.onDisk.add("john-doe");
    disk.onDisk.add("john-doe-2");
    await manager.deliver(delivery(JOHN, "hello"));
    expect(registry.get(JOHN)!.session_name).toBe("john-doe-3");
  });

  it("refuses a message when the chat's queue is full, naming the limit", async () => {
    const { manager, agent } = setup({ maxQueuedPerChat: 2 });
    agent.autoReply = false;
    void manager.deliver(delivery(JOHN, "one"));
    void manager.deliver(delivery(JOHN, "two"));
    await settle();
    await expect(manager.deliver(delivery(JOHN, "three"))).rejects.toMatchObject({
      code: "queue_full",
    });
    await expect(manager.accept(delivery(JANE, "other chat", "Jane Roe"))).resolves.toBeDefined();
  });

  it("quarantines a chat that keeps crashing, keeps its messages, and lifts it on an operator restart", async () => {
    const { manager, agent, clock, logger } = setup({ maxRestarts: 3 });
    agent.autoReply = false;
    // Caught at once: the rejection comes while the crashes are simulated below.
    const outcome = manager
      .deliver(delivery(JOHN, "keeps crashing"))
      .catch((error: unknown) => error);
    await settle();
    for (let round = 0; round < 4; round += 1) {
      agent.last.crash();
      await settle();
      clock.advance(0);
      await settle();
    }
    expect(manager.status(JOHN)!.state).toBe("quarantined");
    expect(manager.status(JOHN)!.queued).toBe(1);
    expect(await outcome).toMatchObject({ code: "quarantined" });
    expect(logger.records.some((record) => record.message === "session-quarantine")).toBe(true);
    const conversations = agent.conversations.length;

    await expect(manager.deliver(delivery(JOHN, "while quarantined"))).rejects.toMatchObject({
      code: "quarantined",
    });
    expect(agent.conversations).toHaveLength(conversations); // nothing started
    expect(manager.status(JOHN)!.queued).toBe(2);

    agent.autoReply = true;
    await manager.restart(JOHN);
    await settle(10);
    expect(manager.status(JOHN)!.state).toBe("idle");
    expect(agent.last.inputs.map((input) => input.text)).toEqual([
      "keeps crashing",
      "while quarantined",
    ]);
    expect(manager.status(JOHN)!.queued).toBe(0);
  });

  it("interrupts a turn past the timeout, then restarts the session if it is still stuck", async () => {
    const { manager, agent, clock } = setup({ turnTimeoutMs: 10 * MINUTE });
    agent.autoReply = false;
    const pending = manager.deliver(delivery(JOHN, "slow"));
    await settle();
    const stuck = agent.last;
    clock.advance(9 * MINUTE);
    await settle();
    expect(stuck.interrupts).toBe(0);

    clock.advance(1 * MINUTE + 1);
    await settle();
    expect(stuck.interrupts).toBe(1);
    expect(agent.conversations).toHaveLength(1);

    agent.autoReply = true;
    clock.advance(1 * MINUTE);
    await settle(10);
    expect(agent.conversations).toHaveLength(2);
    expect(stuck.closed).toBe(true);
    // The message it was stuck on is answered with an error, not handed over again.
    await expect(pending).resolves.toMatchObject({ isError: true });
    expect(agent.last.inputs).toHaveLength(0);
  });

  it("keeps a message queued when the API is overloaded and answers it on a later try", async () => {
    let overloaded = 2;
    const agent = new FakeAgent((text, history) =>
      overloaded-- > 0
        ? { text: "API Error: 529 Overloaded", isError: true }
        : { text: `reply ${history.length}: ${text}` },
    );
    const { manager, clock, replies } = setup({}, agent);
    const pending = manager.deliver(delivery(JOHN, "important"));
    for (let round = 0; round < 3; round += 1) {
      await settle(10);
      clock.advance(60_000);
    }
    await expect(pending).resolves.toMatchObject({ isError: false });
    expect(replies.filter((reply) => reply.isError)).toHaveLength(0);
    expect(agent.last.inputs.filter((input) => input.text === "important")).toHaveLength(3);
  });

  it("gives an error turn that is not worth retrying straight back", async () => {
    const agent = new FakeAgent(() => ({
      text: "API Error: 400 invalid_request_error",
      isError: true,
    }));
    const { manager, replies } = setup({}, agent);
    const reply = await manager.deliver(delivery(JOHN, "bad"));
    expect(reply.isError).toBe(true);
    expect(replies).toHaveLength(1);
  });

  it("answers a turn stopped at its turn limit with what it wrote and a notice, and takes the next message", async () => {
    const agent = new FakeAgent((text, history) =>
      text.includes("loop")
        ? { text: "Looking into it.", limit: "turns" }
        : { text: `reply ${history.length}: ${text}` },
    );
    const { manager, replies } = setup({}, agent);
    const stopped = await manager.deliver(delivery(JOHN, "loop forever"));
    expect(stopped).toMatchObject({ isError: false, limit: "turns" });
    expect(stopped.text).toBe(`Looking into it.\n\n${TURN_LIMIT_NOTICES.turns}`);
    expect(replies).toEqual([stopped]);

    const next = await manager.deliver(delivery(JOHN, "hello"));
    expect(next).toMatchObject({ isError: false, text: "reply 2: hello" });
    expect(agent.conversations).toHaveLength(1);
  });

  it("restarts a session stopped at its spending limit, so its next message is answered (the SDK counts spend per process)", async () => {
    // As the CLI: once a process is over its budget, every later turn of it stops at once.
    const overBudget = new Set<string>();
    let conversations = 0;
    const agent = new FakeAgent((text, history) => {
      const process = String(conversations);
      if (text.includes("expensive")) overBudget.add(process);
      return overBudget.has(process)
        ? { text: "Reached maximum budget ($1)", limit: "spend" }
        : { text: `reply ${history.length}: ${text}` };
    });
    const start = agent.start.bind(agent);
    agent.start = (options) => {
      conversations += 1;
      return start(options);
    };
    const { manager, registry } = setup({}, agent);
    const stopped = await manager.deliver(delivery(JOHN, "something expensive"));
    expect(stopped).toMatchObject({ isError: false, limit: "spend" });
    expect(stopped.text).toContain(TURN_LIMIT_NOTICES.spend);
    await settle(10);

    expect(agent.conversations).toHaveLength(2);
    expect(agent.conversations[0]!.closed).toBe(true);
    expect(agent.last.options).toMatchObject({
      resume: true,
      sessionId: agent.conversations[0]!.options.sessionId,
    });
    expect(registry.get(JOHN)!.restarts).toBe(1);
    const next = await manager.deliver(delivery(JOHN, "hello"));
    expect(next).toMatchObject({ isError: false, text: "reply 2: hello" });
  });

  describe("the live-session pool", () => {
    const CAROL = asChatId("+15550002222");

    it("evicts the least recently used idle session when full; it resumes later with context", async () => {
      const { manager, agent, clock } = setup({ maxLiveSessions: 2 });
      await manager.deliver(delivery(JOHN, "john 1"));
      clock.advance(1_000);
      await manager.deliver(delivery(JANE, "jane 1", "Jane Roe"));
      clock.advance(1_000);
      await manager.deliver(delivery(CAROL, "carol 1", "Carol Poe"));

      expect(manager.status(JOHN)!.state).toBe("stopped");
      expect(manager.status(JANE)!.state).toBe("idle");
      expect(manager.pool()).toMatchObject({ live: 2, bound: 2, evictions: 1 });

      const back = await manager.deliver(delivery(JOHN, "john 2"));
      expect(back.text).toBe("reply 2: john 2");
      expect(manager.status(JANE)!.state).toBe("stopped"); // now the least recently used
      expect(manager.pool().live).toBe(2);
      expect(agent.conversations.filter((conversation) => !conversation.closed)).toHaveLength(2);
    });

    it("never evicts a busy session: a new chat waits until one goes idle", async () => {
      const { manager, agent } = setup({ maxLiveSessions: 1 });
      agent.autoReply = false;
      const john = manager.deliver(delivery(JOHN, "slow"));
      await settle();
      const jane = manager.deliver(delivery(JANE, "waiting", "Jane Roe"));
      await settle();
      expect(agent.conversations).toHaveLength(1);
      expect(manager.pool()).toMatchObject({ live: 1, waiting: 1 });

      agent.autoReply = true;
      agent.flush();
      await expect(john).resolves.toMatchObject({ text: "reply 1: slow" });
      await expect(jane).resolves.toMatchObject({ text: "reply 1: waiting" });
      expect(agent.conversations).toHaveLength(2);
      expect(manager.status(JOHN)!.state).toBe("stopped");
    });

    it("hands slots to waiting chats in arrival order", async () => {
      const { manager, agent } = setup({ maxLiveSessions: 1 });
      agent.autoReply = false;
      const order: string[] = [];
      void manager.deliver(delivery(JOHN, "first"));
      await settle();
      const jane = manager
        .deliver(delivery(JANE, "second", "Jane Roe"))
        .then(() => order.push("jane"));
      await settle();
      const carol = manager
        .deliver(delivery(CAROL, "third", "Carol Poe"))
        .then(() => order.push("carol"));
      await settle();
      agent.autoReply = true;
      agent.flush();
      await Promise.all([jane, carol]);
      expect(order).toEqual(["jane", "carol"]);
      expect(agent.conversations.map((conversation) => conversation.inputs[0]!.text)).toEqual([
        "first",
        "second",
        "third",
      ]);
    });

    describe("with a slot reserved for admins", () => {
      const ADA = asChatId("ada@example.com");
      const admin = (text: string): Delivery => ({
        ...delivery(ADA, text, "Ada Admin"),
        tier: "admin",
      });
      const reserving = { maxLiveSessions: 2, reservedLiveSessions: { admin: 1 } };

      it("lets other chats take turns in the free slots and keeps the reserved one free", async () => {
        const { manager, agent } = setup(reserving);
        await manager.deliver(delivery(JOHN, "john 1"));
        await manager.deliver(delivery(JANE, "jane 1", "Jane Roe"));

        // Jane took John's slot, not the one kept for admins.
        expect(manager.status(JOHN)!.state).toBe("stopped");
        expect(manager.pool()).toMatchObject({ live: 1, evictions: 1, heldForTiers: 1 });

        await manager.deliver(admin("hello"));
        expect(manager.status(JANE)!.state).toBe("idle");
        expect(manager.pool()).toMatchObject({ live: 2, evictions: 1, heldForTiers: 0 });
        expect(agent.conversations.filter((conversation) => !conversation.closed)).toHaveLength(2);
      });

      it("answers an admin at once while other chats wait for a busy session", async () => {
        const { manager, agent } = setup(reserving);
        agent.autoReply = false;
        const john = manager.deliver(delivery(JOHN, "slow"));
        await settle();
        const jane = manager.deliver(delivery(JANE, "waiting", "Jane Roe"));
        await settle();
        expect(manager.pool()).toMatchObject({ live: 1, waiting: 1 });

        const ada = manager.deliver(admin("urgent"));
        await settle();
        const adaConversation = agent.conversations.find(
          (conversation) => conversation.inputs[0]?.text === "urgent",
        );
        expect(adaConversation).toBeDefined();
        agent.flush(adaConversation);
        await expect(ada).resolves.toMatchObject({ text: "reply 1: urgent" });
        expect(manager.pool()).toMatchObject({ live: 2, waiting: 1 });

        agent.autoReply = true;
        agent.flush();
        await expect(john).resolves.toMatchObject({ text: "reply 1: slow" });
        await expect(jane).resolves.toMatchObject({ text: "reply 1: waiting" });
        // Jane took John's slot; Ada's stayed hers.
        expect(manager.status(JOHN)!.state).toBe("stopped");
        expect(manager.status(ADA)!.state).toBe("idle");
      });

      it("holds back only as many slots as reserved: admins beyond that are evicted like anyone", async () => {
        const { manager, clock } = setup(reserving);
        const BOB = asChatId("bob@example.com");
        await manager.deliver(admin("first admin"));
        clock.advance(1_000);
        await manager.deliver({ ...admin("second admin"), chatId: BOB, contactName: "Bob Admin" });
        clock.advance(1_000);
        expect(manager.pool()).toMatchObject({ live: 2, heldForTiers: 0 });

        await manager.deliver(delivery(JOHN, "john 1"));
        // Ada was used longest ago; Bob still holds the one reserved slot.
        expect(manager.status(ADA)!.state).toBe("stopped");
        expect(manager.status(BOB)!.state).toBe("idle");
        expect(manager.status(JOHN)!.state).toBe("idle");
      });
    });

    describe("with a slot reserved for contacts", () => {
      const stranger = (index: number, text: string): Delivery => ({
        chatId: asChatId(`stranger-${index}@example.com`),
        text,
        contactName: null,
        tier: "unknown",
        chatKind: "individual",
        channel: "http",
      });
      const reserving = { maxLiveSessions: 3, reservedLiveSessionsForContacts: 1 };

      it("never lets strangers take the last slot: a favorite is answered at once while they wait (regression: a favorite waited behind a flood of strangers)", async () => {
        const { manager, agent } = setup(reserving);
        agent.autoReply = false;
        const strangers = [1, 2, 3, 4].map((index) =>
          manager.deliver(stranger(index, `stranger ${index}`)),
        );
        await settle();
        // Two strangers hold slots; the others wait, and one slot stays free.
        expect(agent.conversations).toHaveLength(2);
        expect(manager.pool()).toMatchObject({ live: 2, waiting: 2, heldForTiers: 1 });

        const john = manager.deliver(delivery(JOHN, "urgent"));
        await settle();
        const johnConversation = agent.conversations.find(
          (conversation) => conversation.inputs[0]?.text === "urgent",
        );
        expect(johnConversation).toBeDefined();
        agent.flush(johnConversation);
        await expect(john).resolves.toMatchObject({ text: "reply 1: urgent" });
        expect(manager.pool()).toMatchObject({ live: 3, waiting: 2, heldForTiers: 0 });

        agent.autoReply = true;
        agent.flush();
        await Promise.all(strangers);
        // The strangers took turns in their two slots: John's stayed his.
        expect(manager.status(JOHN)!.state).toBe("idle");
        expect(agent.conversations).toHaveLength(5);
      });

      it("counts every contact tier toward it, and holds back only that many", async () => {
        const { manager } = setup(reserving);
        await manager.deliver({ ...delivery(JANE, "jane", "Jane Roe"), tier: "family" });
        expect(manager.pool()).toMatchObject({ live: 1, heldForTiers: 0 });
        // With a contact live, strangers may fill every other slot.
        await manager.deliver(stranger(1, "one"));
        await manager.deliver(stranger(2, "two"));
        expect(manager.pool()).toMatchObject({ live: 3, heldForTiers: 0 });
      });
    });
  });
});
