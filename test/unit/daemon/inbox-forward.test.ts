/**
 * The inbox of a cluster's node (`src/daemon/inbox.ts`, with a `router`): a message whose session
 * runs on another node is recorded and left in the journal for that node, which is woken; a
 * request waiting here gets the reply when the router hands it to the HTTP channel (read from the
 * journal), and a repeat of the message joins the first. A real session manager with a fake
 * agent, a real SQLite journal, the real reply path; the router is a fake that says where each
 * chat's session runs and records the wake-ups.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { InboundMessage } from "../../../src/channels/channel.js";
import type { Elsewhere } from "../../../src/cluster/chat-router.js";
import { validateConfig } from "../../../src/config/load-config.js";
import type { Delivery } from "../../../src/core/session-manager-types.js";
import { SessionManager } from "../../../src/core/session-manager.js";
import { Inbox } from "../../../src/daemon/inbox.js";
import { createMetrics } from "../../../src/daemon/metrics.js";
import { parseContacts } from "../../../src/identity/contacts.js";
import type { Journal } from "../../../src/store/journal.js";
import { createMemoryRegistry } from "../../../src/store/memory-registry.js";
import { openStateDatabase } from "../../../src/store/sqlite-database.js";
import { createSqliteJournal } from "../../../src/store/sqlite-journal.js";
import { asChatId, asSessionName } from "../../../src/utils/ids.js";
import { FakeAgent } from "../../support/fake-agent.js";
import { fakeSessionDisk } from "../../support/fake-session-disk.js";
import { ManualClock } from "../../support/manual-clock.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { createReplyRoad } from "../../support/reply-road.js";

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

/** John's session runs on node-b; every other one here. */
const ELSEWHERE: Elsewhere = { node: "node-b", sessionName: asSessionName("john-doe") };

let folder: string;
let journal: Journal;

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-forward-"));
  const db = openStateDatabase({ path: join(folder, "journal.db"), logger: createMemoryLogger() });
  journal = createSqliteJournal({ db });
});

afterEach(async () => {
  await journal.close();
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

function start(options: { wakeFails?: boolean; here?: Set<string> } = {}) {
  const agent = new FakeAgent();
  const clock = new ManualClock();
  const registry = createMemoryRegistry();
  const logger = createMemoryLogger();
  const replies = createReplyRoad({ journal, registry, clock, logger: createMemoryLogger() });
  const manager = new SessionManager(
    {
      agent,
      registry,
      clock,
      logger,
      ...fakeSessionDisk(registry),
      policyFor: () => ({ allowedTools: [], disallowedTools: [], permissionMode: "dontAsk" }),
      onReply: replies.onReply,
    },
    { healthCheckIntervalMs: 300_000, idleTimeoutMs: 7_200_000, maxConsecutiveErrors: 3 },
  );
  manager.startup();
  const placed: Delivery[] = [];
  const wakes: Elsewhere[] = [];
  const inbox = new Inbox({
    manager,
    registry,
    contacts,
    config,
    metrics: createMetrics(),
    clock,
    logger,
    journal,
    hasCredentials: true,
    answeredInRequest: replies.answeredInRequest,
    router: {
      place: (delivery) => {
        placed.push(delivery);
        const elsewhere = delivery.chatId === asChatId(JOHN) && !options.here?.has(JOHN);
        return Promise.resolve(elsewhere ? ELSEWHERE : undefined);
      },
      wake: (elsewhere) => {
        wakes.push(elsewhere);
        return options.wakeFails
          ? Promise.reject(new Error("the database is unreachable"))
          : Promise.resolve();
      },
    },
  });
  return { agent, inbox, manager, placed, wakes, logger, http: replies.answeredInRequest };
}

/** Lets every pending callback run (no timer). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("Inbox: a message whose session runs on another node", () => {
  it("is recorded and left in the journal, not handed to a session here, and its owner is woken", async () => {
    const { agent, inbox, manager, wakes } = start();
    const accepted = await inbox.submit(message(JOHN, "john-1"), { wait: false });
    expect(accepted).toEqual({
      chat_id: JOHN,
      message_id: "john-1",
      session_name: "john-doe",
      session_id: null,
    });
    expect(wakes).toEqual([ELSEWHERE]);
    await settle();
    expect(agent.conversations).toEqual([]);
    expect(manager.pool().live).toBe(0);
    const row = await journal.findByExternalId("http", "john-1");
    expect(row?.status).toBe("received");
    expect(await journal.pendingInbound()).toEqual([expect.objectContaining({ id: row!.id })]);
  });

  it("answers a waiting request with the reply the router hands to the HTTP channel", async () => {
    const { inbox, http } = start();
    let answered: unknown;
    const waiting = inbox.submit(message(JOHN, "john-1"), { wait: true }).then((value) => {
      answered = value;
      return value;
    });
    const row = await waitForRow("john-1");
    await settle();
    expect(answered).toBeUndefined();
    // The owner recorded the reply; the router read it from the journal and hands it over.
    http.answer!({
      chatId: asChatId(JOHN),
      answers: [row.id],
      agentSessionId: "session-on-node-b",
      text: "the reply from node-b",
    });
    expect(await waiting).toEqual({
      chat_id: JOHN,
      message_id: "john-1",
      session_name: "john-doe",
      session_id: "session-on-node-b",
      reply: "the reply from node-b",
    });
  });

  it("joins a repeat of the message to the first: one row, one wake-up, one answer for both", async () => {
    const { inbox, http, placed, wakes } = start();
    const first = inbox.submit(message(JOHN, "john-1"), { wait: true });
    const row = await waitForRow("john-1");
    await settle();
    const repeat = inbox.submit(message(JOHN, "john-1"), { wait: true });
    await settle();
    http.answer!({
      chatId: asChatId(JOHN),
      answers: [row.id],
      agentSessionId: "session-on-node-b",
      text: "one answer",
    });
    const [one, two] = await Promise.all([first, repeat]);
    expect(one.reply).toBe("one answer");
    expect(two).toEqual(one);
    expect(placed).toHaveLength(1);
    expect(wakes).toHaveLength(1);
    expect((await journal.counts()).inbound.received).toBe(1);
  });

  it("accepts the message when the wake-up fails: the owner's sweep finds it in the journal", async () => {
    const { inbox, logger } = start({ wakeFails: true });
    const accepted = await inbox.submit(message(JOHN, "john-1"), { wait: false });
    expect(accepted.session_name).toBe("john-doe");
    expect(
      logger.records.find((record) => record.message === "message-wake-up-fail")?.fields,
    ).toMatchObject({ node: "node-b" });
    expect((await journal.findByExternalId("http", "john-1"))?.status).toBe("received");
  });

  it("hands a message placed here to its session as before", async () => {
    const { agent, inbox, wakes } = start();
    const answered = await inbox.submit(message(JANE, "jane-1"), { wait: true });
    expect(answered.reply).toContain("hello jane-1");
    expect(wakes).toEqual([]);
    expect(agent.conversations).toHaveLength(1);
    expect((await journal.findByExternalId("http", "jane-1"))?.status).toBe("answered");
  });
});

describe("Inbox: a message forwarded, then its session taken over here", () => {
  it("answers the waiting request once the session here answers it", async () => {
    const here = new Set<string>();
    const { agent, inbox } = start({ here });
    const waiting = inbox.submit(message(JOHN, "john-1"), { wait: true });
    await waitForRow("john-1");
    await settle();
    // node-b died; this node took John's session over, and hands over its open rows.
    here.add(JOHN);
    expect(await inbox.replayPending()).toBe(1);
    const answered = await waiting;
    expect(answered.reply).toContain("hello john-1");
    expect(agent.conversations.flatMap((conversation) => conversation.inputs)).toHaveLength(1);
    expect((await journal.findByExternalId("http", "john-1"))?.status).toBe("answered");
  });

  it("hands a forwarded message to the session that takes it over under its own id, as never handed over", async () => {
    // The forwarding node recorded the envelope's nonce before it placed the message, so the
    // owner took it for one an agent had seen: a transcript search and a replay id.
    const here = new Set<string>();
    const { agent, inbox } = start({ here });
    await inbox.submit(message(JOHN, "john-1"), { wait: false });
    here.add(JOHN);
    expect(await inbox.replayPending()).toBe(1);
    await settle();
    const row = (await journal.findByExternalId("http", "john-1"))!;
    expect(
      agent.conversations.flatMap((conversation) => conversation.inputs.map((input) => input.id)),
    ).toEqual([row.uuid]);
    expect(row.attempts).toBe(0);
  });
});

/** The journal row of `externalId`, once recorded. */
async function waitForRow(externalId: string) {
  for (let turn = 0; turn < 1_000; turn += 1) {
    const row = await journal.findByExternalId("http", externalId);
    if (row) return row;
    await settle();
  }
  throw new Error(`${externalId} was never recorded`);
}
