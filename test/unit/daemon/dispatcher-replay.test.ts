/**
 * Replay after a crash, as the crash-loop soak (`test/soak/`) found it wanting:
 * - a client repeating its message id while earlier rows were still being replayed handed the
 *   message to its session a second time, and the first caller waited forever;
 * - a message the agent had answered before the crash was handed over again under the same id,
 *   which the CLI skips (its transcript holds that id), so it was never answered.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { InboundMessage } from "../../../src/channels/channel.js";
import { validateConfig } from "../../../src/config/load-config.js";
import { ManualClock } from "../../../src/core/clock.js";
import { asChatId } from "../../../src/core/ids.js";
import { SessionManager } from "../../../src/core/session-manager.js";
import type { TurnReply } from "../../../src/core/session.js";
import { Dispatcher } from "../../../src/daemon/dispatcher.js";
import {
  replayMessageId,
  type EarlierAnswer,
  type FindEarlierAnswer,
} from "../../../src/daemon/earlier-answer.js";
import { createMetrics } from "../../../src/daemon/metrics.js";
import { parseContacts } from "../../../src/identity/contacts.js";
import { createMemoryLogger } from "../../../src/logging/logger.js";
import type { Journal } from "../../../src/store/journal.js";
import { createMemoryRegistry } from "../../../src/store/memory-registry.js";
import { openStateDatabase } from "../../../src/store/sqlite-database.js";
import { createSqliteJournal } from "../../../src/store/sqlite-journal.js";
import { FakeAgent } from "../../support/fake-agent.js";
import { fakeSessionDisk } from "../../support/fake-session-disk.js";

const JOHN = "+15551234567";
const JANE = "+15559876543";

const result = validateConfig(
  {},
  { homeDir: "/home/ada", platform: "linux", totalMemoryBytes: 8 * 1024 ** 3 },
);
if (!result.ok) throw new Error(result.problems.join("\n"));
const config = result.config;
const contacts = parseContacts(
  {
    contacts: [
      { name: "John Doe", tier: "favorite", handles: [JOHN] },
      { name: "Jane Roe", tier: "favorite", handles: [JANE] },
    ],
  },
  { knownTiers: Object.keys(config.tiers) },
);

let folder: string;
let journal: Journal;

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-replay-"));
  const db = openStateDatabase({ path: join(folder, "journal.db"), logger: createMemoryLogger() });
  journal = createSqliteJournal({ db });
});

afterEach(async () => {
  journal.close();
  await rm(folder, { recursive: true, force: true });
});

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
function recordedBeforeCrash(chatId: string, externalId: string) {
  const { id, uuid } = journal.recordInbound(message(chatId, externalId));
  journal.markDelivered(id);
  return { id, uuid };
}

/** One start of the daemon: a fresh manager and dispatcher over the same journal. */
function start(findEarlierAnswer?: FindEarlierAnswer) {
  const agent = new FakeAgent();
  const recovered: TurnReply[] = [];
  const clock = new ManualClock();
  const registry = createMemoryRegistry();
  const logger = createMemoryLogger();
  // As the reply path does: the turn's messages are answered in the journal.
  const recordReply = (reply: TurnReply) => {
    const ids = reply.messageIds.map((uuid) => dispatcher.inboundIdOf(uuid)!);
    journal.markAnswered(ids, { channel: "http", chatId: reply.chatId, parts: [reply.text] });
  };
  const manager = new SessionManager(
    {
      agent,
      registry,
      clock,
      logger,
      ...fakeSessionDisk(registry),
      policyFor: () => ({ allowedTools: [], disallowedTools: [], permissionMode: "dontAsk" }),
      onReply: recordReply,
    },
    { healthCheckIntervalMs: 300_000, idleTimeoutMs: 7_200_000, maxConsecutiveErrors: 3 },
  );
  manager.startup();
  const dispatcher: Dispatcher = new Dispatcher({
    manager,
    registry,
    contacts,
    config,
    metrics: createMetrics(),
    clock,
    logger,
    version: "test",
    journal,
    hasCredentials: true,
    ...(findEarlierAnswer ? { findEarlierAnswer } : {}),
    onRecoveredReply: (reply) => {
      recovered.push(reply);
      recordReply(reply);
    },
  });
  return { agent, dispatcher, manager, recovered };
}

function inputsMentioning(agent: FakeAgent, text: string): string[] {
  return agent.conversations
    .flatMap((conversation) => conversation.inputs)
    .filter((input) => input.text.includes(text))
    .map((input) => input.id);
}

describe("replay after a crash", () => {
  it("lets a client that repeats its message id during the replay join it, handed over once", async () => {
    const first = recordedBeforeCrash(JOHN, "john-1");
    const second = recordedBeforeCrash(JOHN, "john-2");
    let release!: () => void;
    const firstLookedUp = new Promise<void>((resolve) => (release = resolve));
    const { agent, dispatcher } = start(async (_chatId, messageIds) => {
      if (messageIds.includes(first.uuid)) await firstLookedUp;
      return undefined;
    });

    const replaying = dispatcher.replayPending();
    // The client repeats John's second message while his first is still being replayed.
    const repeated = dispatcher.submit(message(JOHN, "john-2"), { wait: true });
    release();
    expect(await replaying).toBe(2);

    const answered = await repeated;
    expect(answered.reply).toContain("hello john-2");
    expect(inputsMentioning(agent, "hello john-2")).toEqual([replayMessageId(second.uuid, 1)]);
    expect(journal.findByExternalId("http", "john-2")?.status).toBe("answered");
  });

  it("replays chats side by side: one chat's slow replay does not hold up another's", async () => {
    recordedBeforeCrash(JOHN, "john-1");
    recordedBeforeCrash(JANE, "jane-1");
    let release!: () => void;
    const johnLookedUp = new Promise<void>((resolve) => (release = resolve));
    const { dispatcher } = start(async (chatId) => {
      if (chatId === asChatId(JOHN)) await johnLookedUp;
      return undefined;
    });

    const replaying = dispatcher.replayPending();
    const jane = await dispatcher.submit(message(JANE, "jane-1"), { wait: true });
    expect(jane.reply).toContain("hello jane-1");
    expect(journal.findByExternalId("http", "john-1")?.status).toBe("delivered");
    release();
    expect(await replaying).toBe(2);
  });

  it("answers from the transcript a message the agent answered before the crash, asking nothing", async () => {
    const john = recordedBeforeCrash(JOHN, "john-1");
    const asked: string[][] = [];
    const earlier: EarlierAnswer = { text: "the earlier answer", agentSessionId: "session-1" };
    const { agent, dispatcher, recovered } = start((_chatId, messageIds) => {
      asked.push([...messageIds]);
      return Promise.resolve(earlier);
    });

    await dispatcher.replayPending();
    const repeated = await dispatcher.submit(message(JOHN, "john-1"), { wait: true });

    expect(asked).toEqual([[john.uuid]]);
    expect(repeated.reply).toBe("the earlier answer");
    expect(recovered).toHaveLength(1);
    expect(recovered[0]).toMatchObject({ text: "the earlier answer", isError: false });
    expect(journal.findByExternalId("http", "john-1")).toMatchObject({
      id: john.id,
      status: "answered",
    });
    expect(agent.conversations).toHaveLength(0);
  });

  it("hands a message over again under a new id per replay, and looks for every earlier id", async () => {
    const john = recordedBeforeCrash(JOHN, "john-1");
    const asked: string[][] = [];
    const lookup: FindEarlierAnswer = (_chatId, messageIds) => {
      asked.push([...messageIds]);
      return Promise.resolve(undefined);
    };

    const first = start(lookup);
    first.agent.autoReply = false; // the crash comes before the answer
    await first.dispatcher.replayPending();
    expect(inputsMentioning(first.agent, "hello john-1")).toEqual([replayMessageId(john.uuid, 1)]);
    await first.manager.shutdown();

    const second = start(lookup);
    await second.dispatcher.replayPending();
    const repeated = await second.dispatcher.submit(message(JOHN, "john-1"), { wait: true });

    expect(asked).toEqual([[john.uuid], [john.uuid, replayMessageId(john.uuid, 1)]]);
    expect(inputsMentioning(second.agent, "hello john-1")).toEqual([replayMessageId(john.uuid, 2)]);
    expect(repeated.reply).toContain("hello john-1");
    expect(journal.findByExternalId("http", "john-1")).toMatchObject({
      status: "answered",
      attempts: 2,
    });
  });
});
