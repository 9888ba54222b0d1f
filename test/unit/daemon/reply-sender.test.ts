/**
 * One road for every reply: the reply path records a turn's reply against the journal rows it
 * answers, then hands it to the HTTP channel, which serves the request waiting for those rows.
 * Before issue 13 the waiting request was served by a second road (the ledger's promise) and the
 * HTTP channel's send only logged.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHttpReplyChannel } from "../../../src/channels/http/http-reply-channel.js";
import { ManualClock } from "../../support/manual-clock.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { asAgentSessionId, asChatId, asSessionName, type ChatId } from "../../../src/utils/ids.js";
import type { TurnReply } from "../../../src/core/session.js";
import { createMetrics } from "../../../src/daemon/metrics.js";
import { ReplySender } from "../../../src/daemon/reply-sender.js";
import { SILENT_REPLY } from "../../../src/daemon/tier-policy.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import type { Fence } from "../../../src/store/chat-ownership.js";
import type { Journal } from "../../../src/store/journal.js";
import { createMemoryRegistry } from "../../../src/store/memory-registry.js";
import { openStateDatabase } from "../../../src/store/sqlite-database.js";
import { createSqliteJournal } from "../../../src/store/sqlite-journal.js";

const JOHN = asChatId("+15551234567");

let folder: string;
let journal: Journal;

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-reply-sender-"));
  const db = openStateDatabase({ path: join(folder, "journal.db"), logger: createMemoryLogger() });
  journal = createSqliteJournal({ db });
});

afterEach(async () => {
  await journal.close();
  await rm(folder, { recursive: true, force: true });
});

function start() {
  const logger = createMemoryLogger();
  const http = createHttpReplyChannel({ logger });
  const sender = new ReplySender({
    journal,
    registry: createMemoryRegistry(),
    metrics: createMetrics(),
    clock: new ManualClock(),
    logger,
  });
  sender.addChannel(http);
  return { http, sender, logger };
}

async function record(externalId: string): Promise<number> {
  const { id } = await journal.recordInbound({
    channel: "http",
    chatId: JOHN,
    text: `hello ${externalId}`,
    externalId,
    receivedAt: new Date(),
  });
  await journal.markDelivered(id);
  return id;
}

function turn(recordIds: number[], text: string, isError = false): TurnReply {
  return {
    chatId: JOHN,
    agentSessionId: asAgentSessionId("session-1"),
    messageIds: recordIds.map((id) => `message-${id}`),
    recordIds,
    text,
    isError,
    ...(isError ? { errorText: "overloaded" } : {}),
    totalCostUsd: 0,
    durationMs: 5,
  };
}

describe("ReplySender: one road to the waiting HTTP request", () => {
  it("serves the requests waiting for the rows a turn answers, once the reply is recorded", async () => {
    const { http, sender } = start();
    const first = await record("one");
    const second = await record("two");
    const waited = [first, second].map((id) =>
      http.waitFor(id).then(async (answer) => ({
        answer,
        // What the journal holds when the request is answered.
        status: (await journal.findByExternalId("http", id === first ? "one" : "two"))?.status,
        outbox: (await journal.unsentOutbox()).length + (await journal.counts()).outbox.sent,
      })),
    );

    await sender.onReply(turn([first, second], "the answer"));

    for (const result of await Promise.all(waited)) {
      expect(result.answer).toEqual({ agentSessionId: "session-1", reply: "the answer" });
      expect(result.status).toBe("answered");
      expect(result.outbox).toBe(1);
    }
  });

  it("answers a silent reply with null and records no part", async () => {
    const { http, sender } = start();
    const id = await record("quiet");
    const waited = http.waitFor(id);

    await sender.onReply(turn([id], SILENT_REPLY));

    expect(await waited).toEqual({ agentSessionId: "session-1", reply: null });
    expect((await journal.counts()).outbox.pending + (await journal.counts()).outbox.sent).toBe(0);
    expect((await journal.findByExternalId("http", "quiet"))?.status).toBe("answered");
  });

  it("refuses the waiting request with agent_error when the turn failed", async () => {
    const { http, sender } = start();
    const id = await record("failed");
    const waited = http.waitFor(id);

    await sender.onReply(turn([id], "", true));

    await expect(waited).rejects.toMatchObject({
      code: "agent_error",
      message: "The agent's turn failed: overloaded",
    });
    // Kept with the message, for a request waiting for it on another node of a cluster.
    const [answer] = await journal.answersTo([id]);
    expect([answer?.status, answer?.reply, answer?.failure]).toEqual([
      "answered",
      [],
      "overloaded",
    ]);
  });

  it("leaves a request waiting for a row the turn did not answer", async () => {
    const { http, sender } = start();
    const answered = await record("answered");
    const other = await record("other");
    let settled = false;
    void http.waitFor(other).then(
      () => (settled = true),
      () => (settled = true),
    );

    await sender.onReply(turn([answered], "for the first only"));
    await new Promise((resolve) => setImmediate(resolve));

    expect(settled).toBe(false);
    http.stopWaiting(other);
  });
});

describe("ReplySender: a person's session answers on the handle that asked", () => {
  it("sends the reply to the chat and channel of the latest message it answers, not the session's chat", async () => {
    const { sender } = start();
    const sent: { chatId: string; text: string }[] = [];
    sender.addChannel({
      name: "imessage",
      maxMessageLength: 1000,
      start: () => Promise.resolve(),
      stop: () => Promise.resolve(),
      send: (chatId, text) => {
        sent.push({ chatId, text });
        return Promise.resolve();
      },
    });
    const email = asChatId("john@example.com");
    const { id } = await journal.recordInbound({
      channel: "imessage",
      chatId: email,
      text: "what was the word?",
      externalId: "guid-1",
      receivedAt: new Date(),
    });
    await journal.markDelivered(id);

    // The session's key chat is the phone (an HTTP chat); the message came from the email.
    await sender.onReply({
      ...turn([id], "mango"),
      replyTo: { chatId: email, channel: "imessage" },
    });
    await new Promise((resolve) => setImmediate(resolve));

    expect(sent).toEqual([{ chatId: email, text: "mango" }]);
    expect(await journal.unsentOutbox()).toEqual([]);
  });
});

describe("ReplySender: a cluster's node records a reply under its lease", () => {
  const LEASE: Fence = { sessionName: asSessionName("john-doe"), owner: "node-a", epoch: 3 };

  /** A sender on `journal`, with an imessage channel that records what it sends. */
  function startClustered(options: { refuse?: string; fence?: Fence; without?: "cluster" } = {}) {
    const logger = createMemoryLogger();
    const http = createHttpReplyChannel({ logger });
    const sent: string[] = [];
    const fences: (Fence | undefined)[] = [];
    const told: { chatId: ChatId; inboundIds: readonly number[]; status?: string }[] = [];
    const refusing: Journal = {
      ...journal,
      markAnswered: (ids, reply, answerOptions) => {
        fences.push(answerOptions?.fence);
        if (options.refuse !== undefined) {
          return Promise.reject(new DispatchError(options.refuse, "refused by the test"));
        }
        return journal.markAnswered(ids, reply, answerOptions);
      },
    };
    const registry = createMemoryRegistry();
    registry.set(JOHN, {
      session_name: asSessionName("john-doe"),
      contact_name: "John",
      tier: "favorite",
      session_id: asAgentSessionId("session-1"),
      created_at: "2026-01-01T00:00:00.000Z",
      last_message_time: null,
      chat_kind: "individual",
      channel: "imessage",
      previous_session_ids: [],
      turns: 0,
      errors: 0,
      restarts: 0,
    });
    const sender = new ReplySender({
      journal: refusing,
      registry,
      metrics: createMetrics(),
      clock: new ManualClock(),
      logger,
      ...(options.without === "cluster"
        ? {}
        : {
            cluster: {
              fenceOf: (chatId: ChatId) => (chatId === JOHN ? options.fence : undefined),
              replyRecorded: async (chatId: ChatId, inboundIds: readonly number[]) => {
                // What the other nodes will read: the journal's row, as recorded by now.
                const [answer] = await journal.answersTo(inboundIds);
                told.push({ chatId, inboundIds, ...(answer ? { status: answer.status } : {}) });
              },
              handOff: () => Promise.resolve(),
              maxLengthOf: () => undefined,
            },
          }),
    });
    sender.addChannel(http);
    sender.addChannel({
      name: "imessage",
      maxMessageLength: 1000,
      start: () => Promise.resolve(),
      stop: () => Promise.resolve(),
      send: (_chatId, text) => {
        sent.push(text);
        return Promise.resolve();
      },
    });
    return { http, sender, logger, sent, fences, told };
  }

  async function recordImessage(externalId: string): Promise<number> {
    const { id } = await journal.recordInbound({
      channel: "imessage",
      chatId: JOHN,
      text: `hello ${externalId}`,
      externalId,
      receivedAt: new Date(),
    });
    await journal.markDelivered(id);
    return id;
  }

  for (const code of ["journal_conflict", "lease_lost"]) {
    it(`sends nothing and answers no waiter when the record is refused with ${code}`, async () => {
      const { http, sender, logger, sent, told } = startClustered({ refuse: code, fence: LEASE });
      const id = await recordImessage(`refused-${code}`);
      let settled = false;
      void http.waitFor(id).then(
        () => (settled = true),
        () => (settled = true),
      );

      await sender.onReply(turn([id], "answered elsewhere"));
      await new Promise((resolve) => setImmediate(resolve));

      expect(sent).toEqual([]);
      expect(settled).toBe(false);
      // The node that answers it serves the request from the journal.
      expect(http.waitingFor()).toEqual([id]);
      expect(told).toEqual([]);
      expect(
        logger.records.find((record) => record.message === "reply-drop")?.fields,
      ).toMatchObject({ chatId: JOHN, reason: code });
      expect(logger.records.map((record) => record.message)).not.toContain("reply-record-failed");
      http.stopWaiting(id);
    });
  }

  it("still sends, unrecorded, a reply the journal failed to record for another reason", async () => {
    const { http, sender, sent, told } = startClustered({ refuse: "journal_failed", fence: LEASE });
    const id = await recordImessage("journal-down");
    const waited = http.waitFor(id);

    await sender.onReply(turn([id], "sent all the same"));
    await new Promise((resolve) => setImmediate(resolve));

    expect(sent).toEqual(["sent all the same"]);
    expect(await waited).toEqual({ agentSessionId: "session-1", reply: "sent all the same" });
    expect(told).toEqual([]);
  });

  it("records under the lease fenceOf gives, tells the cluster once recorded, and sends", async () => {
    const { sender, sent, fences, told } = startClustered({ fence: LEASE });
    const first = await recordImessage("fenced-1");
    const second = await recordImessage("fenced-2");

    await sender.onReply(turn([first, second], "recorded under the lease"));
    await new Promise((resolve) => setImmediate(resolve));

    expect(fences).toEqual([LEASE]);
    expect(told).toEqual([{ chatId: JOHN, inboundIds: [first, second], status: "answered" }]);
    expect(sent).toEqual(["recorded under the lease"]);
  });

  it("records without a fence where fenceOf has none, and on a daemon that is no cluster's node", async () => {
    const withoutTenure = startClustered();
    await withoutTenure.sender.onReply(turn([await recordImessage("no-tenure")], "one"));
    expect(withoutTenure.fences).toEqual([undefined]);

    const embedded = startClustered({ without: "cluster" });
    await embedded.sender.onReply(turn([await recordImessage("embedded")], "two"));
    expect(embedded.fences).toEqual([undefined]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(embedded.sent).toEqual(["two"]);
  });
});
