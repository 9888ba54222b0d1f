/**
 * Replay after a crash, as the crash-loop soak (`test/soak/`) found it wanting:
 * - a client repeating its message id while earlier rows were still being replayed handed the
 *   message to its session a second time, and the first caller waited forever;
 * - a message the agent had answered before the crash was handed over again under the same id,
 *   which the CLI skips (its transcript holds that id), so it was never answered;
 * - messages steered into a running turn, which the CLI folds into one transcript entry, were
 *   handed over again and stood twice in the session's context, and were answered twice
 *   (issue 12).
 */
import { describe, expect, it } from "vitest";
import type { InboundMessage } from "../../../src/channels/channel.js";
import { asChatId } from "../../../src/utils/ids.js";
import {
  replayMessageId,
  type FindInTranscript,
  type Sighting,
} from "../../../src/daemon/earlier-answer.js";
import { unansweredReminder } from "../../../src/daemon/unanswered-reminder.js";
import { envelopeNoncesIn } from "../../../src/identity/wrap-message.js";
import type { Registry } from "../../../src/store/registry.js";
import type { FakeAgent } from "../../support/fake-agent.js";
import { startInbox, testConfig, testContacts, useSqliteJournal } from "../../support/inbox-rig.js";

const JOHN = "+15551234567";
const JANE = "+15559876543";

const config = testConfig();
const contacts = testContacts(config, [
  { name: "John Doe", tier: "favorite", handles: [JOHN] },
  { name: "Jane Roe", tier: "favorite", handles: [JANE] },
]);

const sqlite = useSqliteJournal("dispatch-replay-");

function message(chatId: string, externalId: string): InboundMessage {
  return {
    channel: "http",
    chatId,
    text: `hello ${externalId}`,
    externalId,
    receivedAt: new Date(),
  };
}

/** A message the previous run took and handed to its session, and never answered. */
async function recordedBeforeCrash(chatId: string, externalId: string) {
  const { id, uuid } = await sqlite.journal.recordInbound(message(chatId, externalId));
  await sqlite.journal.markDelivered(id);
  return { id, uuid };
}

/**
 * One start of the daemon: a fresh manager and inbox over the same journal; with
 * `previous`, the agent (its sessions) and the registry of the start before it.
 */
function start(
  findInTranscript?: FindInTranscript,
  previous?: { agent: FakeAgent; registry: Registry },
) {
  return startInbox({
    journal: sqlite.journal,
    config,
    contacts,
    ...previous,
    inbox: findInTranscript ? { findInTranscript } : {},
  });
}

function inputsMentioning(agent: FakeAgent, text: string): string[] {
  return agent.conversations
    .flatMap((conversation) => conversation.inputs)
    .filter((input) => input.text.includes(text))
    .map((input) => input.id);
}

describe("replay after a crash", () => {
  it("lets a client that repeats its message id during the replay join it, handed over once", async () => {
    const first = await recordedBeforeCrash(JOHN, "john-1");
    const second = await recordedBeforeCrash(JOHN, "john-2");
    let release!: () => void;
    const firstLookedUp = new Promise<void>((resolve) => (release = resolve));
    const { agent, inbox } = start(async (_chatId, messages) => {
      if (messages.some(({ messageIds }) => messageIds.includes(first.uuid))) await firstLookedUp;
      return messages.map(() => undefined);
    });

    const replaying = inbox.replayPending();
    // The client repeats John's second message while his first is still being replayed.
    const repeated = inbox.submit(message(JOHN, "john-2"), { wait: true });
    release();
    expect(await replaying).toBe(2);

    const answered = await repeated;
    expect(answered.reply).toContain("hello john-2");
    expect(inputsMentioning(agent, "hello john-2")).toEqual([replayMessageId(second.uuid, 1)]);
    expect((await sqlite.journal.findByExternalId("http", "john-2"))?.status).toBe("answered");
  });

  it("replays chats side by side: one chat's slow replay does not hold up another's", async () => {
    await recordedBeforeCrash(JOHN, "john-1");
    await recordedBeforeCrash(JANE, "jane-1");
    let release!: () => void;
    const johnLookedUp = new Promise<void>((resolve) => (release = resolve));
    const { inbox } = start(async (chatId, messages) => {
      if (chatId === asChatId(JOHN)) await johnLookedUp;
      return messages.map(() => undefined);
    });

    const replaying = inbox.replayPending();
    const jane = await inbox.submit(message(JANE, "jane-1"), { wait: true });
    expect(jane.reply).toContain("hello jane-1");
    expect((await sqlite.journal.findByExternalId("http", "john-1"))?.status).toBe("delivered");
    release();
    expect(await replaying).toBe(2);
  });

  it("answers from the transcript a message the agent answered before the crash, asking nothing", async () => {
    const john = await recordedBeforeCrash(JOHN, "john-1");
    const asked: string[][] = [];
    const earlier: Sighting = {
      state: "answered",
      text: "the earlier answer",
      agentSessionId: "session-1",
      turn: 0,
    };
    const { agent, inbox, recovered } = start((_chatId, messages) => {
      asked.push(...messages.map(({ messageIds }) => [...messageIds]));
      return Promise.resolve(messages.map(() => earlier));
    });

    await inbox.replayPending();
    const repeated = await inbox.submit(message(JOHN, "john-1"), { wait: true });

    expect(asked).toEqual([[john.uuid]]);
    expect(repeated.reply).toBe("the earlier answer");
    expect(recovered).toHaveLength(1);
    expect(recovered[0]).toMatchObject({ text: "the earlier answer", isError: false });
    expect(await sqlite.journal.findByExternalId("http", "john-1")).toMatchObject({
      id: john.id,
      status: "answered",
    });
    expect(agent.conversations).toHaveLength(0);
  });

  it("hands a message over again under a new id per replay, and looks for every earlier id", async () => {
    const john = await recordedBeforeCrash(JOHN, "john-1");
    const asked: string[][] = [];
    const lookup: FindInTranscript = (_chatId, messages) => {
      asked.push(...messages.map(({ messageIds }) => [...messageIds]));
      return Promise.resolve(messages.map(() => undefined));
    };

    const first = start(lookup);
    first.agent.autoReply = false; // the crash comes before the answer
    await first.inbox.replayPending();
    expect(inputsMentioning(first.agent, "hello john-1")).toEqual([replayMessageId(john.uuid, 1)]);
    await first.manager.shutdown();

    const second = start(lookup);
    await second.inbox.replayPending();
    const repeated = await second.inbox.submit(message(JOHN, "john-1"), { wait: true });

    expect(asked).toEqual([[john.uuid], [john.uuid, replayMessageId(john.uuid, 1)]]);
    expect(inputsMentioning(second.agent, "hello john-1")).toEqual([replayMessageId(john.uuid, 2)]);
    expect(repeated.reply).toContain("hello john-1");
    expect(await sqlite.journal.findByExternalId("http", "john-1")).toMatchObject({
      status: "answered",
      attempts: 2,
    });
  });

  it("hands a message over again in the envelope it had, whose nonce the journal kept", async () => {
    const before = start();
    before.agent.autoReply = false;
    await before.inbox.submit(message(JOHN, "john-1"), { wait: false });
    const [firstInput] = before.agent.last.inputs;
    const [nonce] = envelopeNoncesIn(firstInput!.text);
    expect(nonce).toBeDefined();
    expect((await sqlite.journal.findByExternalId("http", "john-1"))?.envelopeNonce).toBe(nonce);
    await before.manager.shutdown();

    const looked: (string | undefined)[] = [];
    const after = start((_chatId, messages) => {
      looked.push(...messages.map((identity) => identity.envelopeNonce));
      return Promise.resolve(messages.map(() => undefined));
    }, before);
    await after.inbox.replayPending();
    expect(looked).toEqual([nonce]);
    const [replayed] = after.agent.last.inputs;
    expect(replayed!.id).toBe(replayMessageId(firstInput!.id, 1));
    expect(envelopeNoncesIn(replayed!.text)).toEqual([nonce]);
  });

  it("answers messages steered into one turn with that turn's reply, recorded once", async () => {
    const rows = [];
    for (const id of ["john-1", "john-2", "john-3"]) rows.push(await recordedBeforeCrash(JOHN, id));
    const answered: Sighting = {
      state: "answered",
      text: "one answer to all three",
      agentSessionId: "session-1",
      turn: 4,
    };
    const { agent, inbox, recovered } = start((_chatId, messages) =>
      Promise.resolve(messages.map(() => answered)),
    );

    await inbox.replayPending();

    expect(recovered).toHaveLength(1);
    expect(recovered[0]!.messageIds).toEqual(rows.map((row) => row.uuid));
    for (const [index, row] of rows.entries()) {
      expect(await sqlite.journal.findByExternalId("http", `john-${index + 1}`)).toMatchObject({
        status: "answered",
        answeredBy: row.id === rows.at(-1)!.id ? row.id : rows.at(-1)!.id,
      });
      const repeated = await inbox.submit(message(JOHN, `john-${index + 1}`), { wait: true });
      expect(repeated.reply).toBe("one answer to all three");
    }
    expect(agent.conversations).toHaveLength(0);
  });

  // Regression (issue 12): eight of nine messages steered into a turn were handed over again
  // after a kill, though the CLI had folded them into its transcript: each stood twice in the
  // session's context and was answered twice.
  it("gives the session no message its context holds again: one reminder answers them", async () => {
    const before = start();
    before.agent.autoReply = false; // the kill comes before any answer
    for (const id of ["john-1", "john-2", "john-3", "john-4"]) {
      await before.inbox.submit(message(JOHN, id), { wait: false });
    }
    const sessionId = before.registry.get(asChatId(JOHN))!.session_id!;
    await before.manager.shutdown();
    before.agent.autoReply = true;

    // The transcript: john-1 answered, john-2 and john-3 in the context without an answer,
    // john-4 never reached it.
    const byText: Record<string, Sighting | undefined> = {
      "john-1": { state: "answered", text: "answer to one", agentSessionId: sessionId, turn: 0 },
      "john-2": { state: "unanswered", agentSessionId: sessionId },
      "john-3": { state: "unanswered", agentSessionId: sessionId },
    };
    const nonces = new Map<string | undefined, string>();
    for (const id of ["john-1", "john-2", "john-3", "john-4"]) {
      nonces.set((await sqlite.journal.findByExternalId("http", id))!.envelopeNonce, id);
    }
    const after = start(
      (_chatId, messages) =>
        Promise.resolve(messages.map((identity) => byText[nonces.get(identity.envelopeNonce)!])),
      before,
    );
    const inputsBefore = after.agent.conversations.length;
    await after.inbox.replayPending();
    const replies = await Promise.all(
      ["john-1", "john-2", "john-3", "john-4"].map((id) =>
        after.inbox.submit(message(JOHN, id), { wait: true }),
      ),
    );

    const resumed = after.agent.conversations.slice(inputsBefore);
    expect(resumed).toHaveLength(1);
    expect(resumed[0]!.options).toMatchObject({ resume: true, sessionId });
    const john2 = (await sqlite.journal.findByExternalId("http", "john-2"))!;
    const john3 = (await sqlite.journal.findByExternalId("http", "john-3"))!;
    const john4 = (await sqlite.journal.findByExternalId("http", "john-4"))!;
    const inputs = resumed[0]!.inputs;
    expect(inputs.map((input) => input.id)).toEqual([
      replayMessageId(john3.uuid, 1),
      replayMessageId(john4.uuid, 1),
    ]);
    expect(inputs[0]!.text).toBe(unansweredReminder(2));
    expect(inputs[1]!.text).toContain("hello john-4");
    expect(replies.map((reply) => reply.reply)).toEqual([
      "answer to one",
      `reply 1: ${unansweredReminder(2)}`,
      `reply 1: ${unansweredReminder(2)}`,
      expect.stringContaining("hello john-4"),
    ]);
    expect(john2).toMatchObject({ status: "answered", answeredBy: john3.id, attempts: 1 });
    expect(john3).toMatchObject({ status: "answered", answeredBy: john3.id, attempts: 1 });
    expect(john4).toMatchObject({ status: "answered", answeredBy: john4.id });
  });
});
