/**
 * Cases every adapter of the journal (`src/store/journal.ts`) must pass (unstorage's
 * `testDriver` pattern, as `transcript-store-contract.ts`): each adapter's test file calls
 * `describeJournalContract` with hooks that give it a journal on fresh storage and let it look
 * at the tables. The cases were the SQLite journal's own tests, their assertions kept.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { InboundMessage } from "../../../src/channels/channel.js";
import { DispatchError } from "../../../src/utils/errors.js";
import {
  DEFAULT_RETENTION_MS,
  type InboundAnswer,
  type Journal,
} from "../../../src/store/journal.js";
import { ManualClock } from "../../support/manual-clock.js";

export interface JournalContractHooks {
  /** A journal on fresh, empty storage that takes its times from `clock`. */
  create(clock: ManualClock): Promise<Journal>;
  /** Closes whatever `create` opened. */
  cleanup(): Promise<void>;
  /** Rows in a table. */
  tableCount(table: "inbound" | "outbox" | "cursors"): Promise<number>;
  /** Every message's external id, in id order. */
  externalIds(): Promise<(string | null)[]>;
  /** One reply part as stored. */
  outboxPart(
    inboundId: number,
    part: number,
  ): Promise<{ attempts: number; sent_at: number | null; error: string | null }>;
  /** Reply parts whose message is gone (a broken reference). */
  orphanedParts(): Promise<number>;
  /** From now on every insert into or update of `table` fails with `message`. */
  failWrites(table: "inbound" | "cursors", message: string): Promise<void>;
  /** The code of a failure the storage itself reports. */
  failedCode: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export async function expectDispatchError(
  work: () => unknown,
  code: string,
): Promise<DispatchError> {
  let caught: unknown;
  try {
    await work();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(DispatchError);
  expect((caught as DispatchError).code).toBe(code);
  return caught as DispatchError;
}

export function describeJournalContract(adapter: string, hooks: JournalContractHooks): void {
  describe(`journal contract: ${adapter}`, () => {
    let clock: ManualClock;
    let journal: Journal;
    let counter = 0;

    beforeEach(async () => {
      clock = new ManualClock();
      journal = await hooks.create(clock);
    });
    afterEach(() => hooks.cleanup());

    function message(overrides: Partial<InboundMessage> = {}): InboundMessage {
      counter += 1;
      return {
        channel: "http",
        chatId: "+15551234567",
        text: `hello ${counter}`,
        externalId: `m-${counter}`,
        receivedAt: new Date(clock.now()),
        ...overrides,
      };
    }

    describe(`recordInbound`, () => {
      it("records a new message with a fresh uuid and every field the channel gave", async () => {
        const receivedAt = new Date("2026-01-01T09:00:00.000Z");
        const result = await journal.recordInbound(
          message({ sender: "+15550000001", groupName: "Family", externalId: "a-1", receivedAt }),
        );
        expect(result).toEqual({
          id: expect.any(Number) as number,
          uuid: expect.stringMatching(/^[0-9a-f-]{36}$/) as string,
          duplicate: false,
          status: "received",
        });
        const row = await journal.findByExternalId("http", "a-1");
        expect(row).toMatchObject({
          id: result.id,
          uuid: result.uuid,
          channel: "http",
          chatId: "+15551234567",
          sender: "+15550000001",
          groupName: "Family",
          externalId: "a-1",
          receivedAt,
          status: "received",
          attempts: 0,
        });
        expect(row?.answeredBy).toBeUndefined();
      });

      it("records messages without an external id as new every time", async () => {
        const first = await journal.recordInbound(message({ externalId: undefined, text: "same" }));
        const second = await journal.recordInbound(
          message({ externalId: undefined, text: "same" }),
        );
        expect(second.id).not.toBe(first.id);
        expect(second.uuid).not.toBe(first.uuid);
        expect(second.duplicate).toBe(false);
        expect(await journal.pendingInbound()).toHaveLength(2);
        expect((await journal.pendingInbound())[0]?.externalId).toBeUndefined();
      });

      it("keys external ids by channel", async () => {
        const http = await journal.recordInbound(message({ channel: "http", externalId: "42" }));
        const imessage = await journal.recordInbound(
          message({ channel: "imessage", externalId: "42" }),
        );
        expect(imessage.duplicate).toBe(false);
        expect(imessage.id).not.toBe(http.id);
      });

      it("reports a redelivered message that is not yet answered as a duplicate, without a reply", async () => {
        const first = await journal.recordInbound(message({ externalId: "dup" }));
        await journal.markDelivered(first.id);
        const again = await journal.recordInbound(message({ externalId: "dup", text: "changed" }));
        expect(again).toEqual({
          id: first.id,
          uuid: first.uuid,
          duplicate: true,
          status: "delivered",
        });
        expect(await hooks.tableCount("inbound")).toBe(1);
        expect((await journal.findByExternalId("http", "dup"))?.text).not.toBe("changed");
      });

      it("answers a duplicate delivery once: the second record returns the first reply's parts", async () => {
        const first = await journal.recordInbound(message({ externalId: "once" }));
        await journal.markDelivered(first.id);
        await journal.markAnswered([first.id], {
          channel: "http",
          chatId: "+1555",
          parts: ["a", "b"],
        });
        const again = await journal.recordInbound(message({ externalId: "once" }));
        expect(again).toEqual({
          id: first.id,
          uuid: first.uuid,
          duplicate: true,
          status: "answered",
          reply: ["a", "b"],
        });
        expect(await journal.pendingInbound()).toEqual([]);
        expect((await journal.counts()).inbound.answered).toBe(1);
        expect(await hooks.tableCount("outbox")).toBe(2);
      });

      it("reports a rejected duplicate as rejected, with no reply", async () => {
        const first = await journal.recordInbound(message({ externalId: "stranger" }));
        await journal.markRejected(first.id, "unknown_sender", "not in contacts");
        const again = await journal.recordInbound(message({ externalId: "stranger" }));
        expect(again.status).toBe("rejected");
        expect(again.duplicate).toBe(true);
        expect(again.reply).toBeUndefined();
      });

      it("refuses an invalid receivedAt without touching the cursor", async () => {
        await journal.recordInbound(message(), { cursor: "1" });
        await expectDispatchError(
          () => journal.recordInbound(message({ receivedAt: new Date("nope") }), { cursor: "2" }),
          "journal_invalid_message",
        );
        expect(await journal.cursor("http")).toBe("1");
      });
    });

    describe(`cursors`, () => {
      it("saves a cursor that no message carries", async () => {
        await journal.setCursor("imessage", '{"rowId":7}');
        expect(await journal.cursor("imessage")).toBe('{"rowId":7}');
        await journal.setCursor("imessage", '{"rowId":9}');
        expect(await journal.cursor("imessage")).toBe('{"rowId":9}');
        expect(await journal.cursor("signal")).toBeUndefined();
      });

      it("has no cursor until a message brings one, then keeps the latest per channel", async () => {
        expect(await journal.cursor("imessage")).toBeUndefined();
        await journal.recordInbound(message({ channel: "imessage" }), { cursor: "100" });
        await journal.recordInbound(message({ channel: "imessage" }), { cursor: "101" });
        await journal.recordInbound(message({ channel: "signal" }), { cursor: "s-9" });
        await journal.recordInbound(message({ channel: "imessage" })); // no cursor: unchanged
        expect(await journal.cursor("imessage")).toBe("101");
        expect(await journal.cursor("signal")).toBe("s-9");
      });

      it("advances the cursor past a duplicate", async () => {
        await journal.recordInbound(message({ channel: "imessage", externalId: "g1" }), {
          cursor: "1",
        });
        const again = await journal.recordInbound(
          message({ channel: "imessage", externalId: "g1" }),
          {
            cursor: "2",
          },
        );
        expect(again.duplicate).toBe(true);
        expect(await journal.cursor("imessage")).toBe("2");
      });

      it("leaves the cursor unchanged when the insert fails inside the transaction", async () => {
        await journal.recordInbound(message({ channel: "imessage" }), { cursor: "1" });
        await hooks.failWrites("inbound", "injected insert failure");
        const error = await expectDispatchError(
          () => journal.recordInbound(message({ channel: "imessage" }), { cursor: "2" }),
          hooks.failedCode,
        );
        expect(error.message).toContain("injected insert failure");
        expect(await journal.cursor("imessage")).toBe("1");
        expect(await hooks.tableCount("inbound")).toBe(1);
      });

      it("leaves no message behind when the cursor write fails inside the transaction", async () => {
        await journal.recordInbound(message({ channel: "imessage" }), { cursor: "1" });
        await hooks.failWrites("cursors", "injected cursor failure");
        await expectDispatchError(
          () => journal.recordInbound(message({ channel: "imessage" }), { cursor: "2" }),
          hooks.failedCode,
        );
        expect(await hooks.tableCount("inbound")).toBe(1);
        expect(await journal.cursor("imessage")).toBe("1");
      });
    });

    describe(`inbound states`, () => {
      it("moves received -> delivered and never back from answered", async () => {
        const { id } = await journal.recordInbound(message({ externalId: "s1" }));
        clock.advance(1000);
        await journal.markDelivered(id);
        const delivered = await journal.findByExternalId("http", "s1");
        expect(delivered?.status).toBe("delivered");
        expect(delivered?.updatedAt.getTime()).toBe(clock.now());
        await journal.markAnswered([id], { channel: "http", chatId: "c", parts: ["ok"] });
        await journal.markDelivered(id);
        expect((await journal.findByExternalId("http", "s1"))?.status).toBe("answered");
      });

      it("rejects with a code and a message, and drops the row from the replay list", async () => {
        const { id } = await journal.recordInbound(message({ externalId: "r1" }));
        await journal.markRejected(id, "invalid_chat_id", "chat id ../x is not valid");
        expect(await journal.findByExternalId("http", "r1")).toMatchObject({
          status: "rejected",
          errorCode: "invalid_chat_id",
          errorMessage: "chat id ../x is not valid",
        });
        expect(await journal.pendingInbound()).toEqual([]);
      });

      it("counts attempts", async () => {
        const { id } = await journal.recordInbound(message({ externalId: "a1" }));
        expect(await journal.recordAttempt(id)).toBe(1);
        expect(await journal.recordAttempt(id)).toBe(2);
        expect((await journal.findByExternalId("http", "a1"))?.attempts).toBe(2);
      });

      it("keeps the envelope nonce a message was handed over in, and reports it for a redelivery", async () => {
        const { id } = await journal.recordInbound(message({ externalId: "e1" }));
        expect(await journal.findByExternalId("http", "e1")).not.toHaveProperty("envelopeNonce");
        await journal.recordEnvelopeNonce(id, "0123456789abcdef01234567");
        expect((await journal.pendingInbound())[0]?.envelopeNonce).toBe("0123456789abcdef01234567");
        expect(await journal.recordInbound(message({ externalId: "e1" }))).toMatchObject({
          duplicate: true,
          envelopeNonce: "0123456789abcdef01234567",
        });
      });

      it("throws journal_unknown_inbound for ids it never recorded", async () => {
        await expectDispatchError(() => journal.markDelivered(999), "journal_unknown_inbound");
        await expectDispatchError(
          () => journal.recordEnvelopeNonce(999, "n"),
          "journal_unknown_inbound",
        );
        await expectDispatchError(
          () => journal.markRejected(999, "x", "y"),
          "journal_unknown_inbound",
        );
        await expectDispatchError(() => journal.recordAttempt(999), "journal_unknown_inbound");
        await expectDispatchError(
          () => journal.markAnswered([999], { channel: "http", chatId: "c", parts: [] }),
          "journal_unknown_inbound",
        );
      });

      it("lists one chat's pending messages, in order, for a failover that replays its chats", async () => {
        const ids: number[] = [];
        for (const chatId of ["alice", "bob", "alice", "alice"]) {
          ids.push((await journal.recordInbound(message({ chatId }))).id);
        }
        await journal.markAnswered([ids[2]!], { channel: "http", chatId: "alice", parts: [] });
        const alice = await journal.pendingInbound({ chatId: "alice" });
        expect(alice.map((row) => row.id)).toEqual([ids[0], ids[3]]);
        expect(await journal.pendingInbound({ chatId: "carol" })).toEqual([]);
      });

      it("lists pending messages in the order they were received, across chats", async () => {
        const ids: number[] = [];
        for (const [index, chatId] of ["alice", "bob", "alice", "bob", "alice"].entries()) {
          ids.push(
            (await journal.recordInbound(message({ chatId, text: `${chatId} ${index}` }))).id,
          );
        }
        await journal.markDelivered(ids[1]!);
        await journal.markAnswered([ids[2]!], { channel: "http", chatId: "alice", parts: ["x"] });
        await journal.markRejected(ids[3]!, "unknown_sender", "no");
        const pending = await journal.pendingInbound();
        expect(pending.map((row) => row.id)).toEqual([ids[0], ids[1], ids[4]]);
        expect(pending.map((row) => row.status)).toEqual(["received", "delivered", "received"]);
        expect(pending.filter((row) => row.chatId === "alice").map((row) => row.text)).toEqual([
          "alice 0",
          "alice 4",
        ]);
      });
    });

    describe(`markAnswered and the outbox`, () => {
      it("gives the last message of a turn the outbox rows, and answers every message of it", async () => {
        const a = await journal.recordInbound(message({ externalId: "t-a" }));
        const b = await journal.recordInbound(message({ externalId: "t-b" }));
        await journal.markDelivered(a.id);
        await journal.markDelivered(b.id);
        clock.advance(5);
        const rows = await journal.markAnswered([a.id, b.id], {
          channel: "http",
          chatId: "+1555",
          parts: ["one", "two", "three"],
        });
        expect(rows).toEqual(
          [0, 1, 2].map((part) => ({
            id: part + 1,
            inboundId: b.id,
            part,
            channel: "http",
            chatId: "+1555",
            text: ["one", "two", "three"][part],
            status: "pending",
            attempts: 0,
            createdAt: new Date(clock.now()),
          })),
        );
        expect(await journal.findByExternalId("http", "t-a")).toMatchObject({
          status: "answered",
          answeredBy: b.id,
        });
        expect(await journal.findByExternalId("http", "t-b")).toMatchObject({
          status: "answered",
          answeredBy: b.id,
        });
        // A redelivery of the first message gets the turn's reply, held by the last.
        expect((await journal.recordInbound(message({ externalId: "t-a" }))).reply).toEqual([
          "one",
          "two",
          "three",
        ]);
      });

      it("answers with silence: messages answered, no outbox rows", async () => {
        const { id } = await journal.recordInbound(message({ externalId: "quiet" }));
        expect(
          await journal.markAnswered([id], { channel: "http", chatId: "c", parts: [] }),
        ).toEqual([]);
        expect((await journal.counts()).inbound.answered).toBe(1);
        expect(await hooks.tableCount("outbox")).toBe(0);
        expect((await journal.recordInbound(message({ externalId: "quiet" }))).reply).toEqual([]);
      });

      it("refuses to answer a message twice and rolls the whole turn back", async () => {
        const a = await journal.recordInbound(message({ externalId: "x-a" }));
        const b = await journal.recordInbound(message({ externalId: "x-b" }));
        await journal.markAnswered([a.id], { channel: "http", chatId: "c", parts: ["first"] });
        const error = await expectDispatchError(
          () =>
            journal.markAnswered([b.id, a.id], { channel: "http", chatId: "c", parts: ["2nd"] }),
          "journal_conflict",
        );
        expect(error.message).toContain("already answered");
        expect((await journal.findByExternalId("http", "x-b"))?.status).toBe("received");
        expect((await journal.unsentOutbox()).map((row) => row.text)).toEqual(["first"]);
        await expectDispatchError(
          () => journal.markAnswered([], { channel: "http", chatId: "c", parts: [] }),
          "journal_conflict",
        );
      });

      it("moves parts pending -> failed -> sent, and pending -> abandoned", async () => {
        const { id } = await journal.recordInbound(message());
        await journal.markAnswered([id], {
          channel: "imessage",
          chatId: "c",
          parts: ["p0", "p1", "p2"],
        });
        clock.advance(100);
        await journal.markSendFailed(id, 0, "osascript exited 1");
        expect((await journal.unsentOutbox())[0]).toMatchObject({
          part: 0,
          status: "failed",
          attempts: 1,
          error: "osascript exited 1",
        });
        clock.advance(100);
        await journal.markSent(id, 0);
        await journal.abandon(id, 2, "older than the resend bound");
        const unsent = await journal.unsentOutbox();
        expect(unsent.map((row) => [row.part, row.status])).toEqual([[1, "pending"]]);
        expect((await journal.counts()).outbox).toEqual({
          pending: 1,
          sent: 1,
          failed: 0,
          abandoned: 1,
        });
        const part0 = await hooks.outboxPart(id, 0);
        expect(part0).toMatchObject({ attempts: 2, sent_at: clock.now(), error: null });
        // Terminal states stay terminal.
        await journal.markSent(id, 2);
        await journal.markSendFailed(id, 0, "late failure");
        expect((await journal.counts()).outbox).toEqual({
          pending: 1,
          sent: 1,
          failed: 0,
          abandoned: 1,
        });
      });

      it("lists unsent parts by message, then part", async () => {
        const first = await journal.recordInbound(message());
        const second = await journal.recordInbound(message());
        await journal.markAnswered([second.id], {
          channel: "http",
          chatId: "c",
          parts: ["s0", "s1"],
        });
        await journal.markAnswered([first.id], {
          channel: "http",
          chatId: "c",
          parts: ["f0", "f1"],
        });
        await journal.markSendFailed(second.id, 1, "boom");
        expect((await journal.unsentOutbox()).map((row) => row.text)).toEqual([
          "f0",
          "f1",
          "s0",
          "s1",
        ]);
      });

      it("throws journal_unknown_outbox for a part that was never recorded", async () => {
        const { id } = await journal.recordInbound(message());
        await journal.markAnswered([id], { channel: "http", chatId: "c", parts: ["only"] });
        await expectDispatchError(() => journal.markSent(id, 1), "journal_unknown_outbox");
        await expectDispatchError(
          () => journal.markSendFailed(id, 5, "x"),
          "journal_unknown_outbox",
        );
        await expectDispatchError(() => journal.abandon(999, 0, "x"), "journal_unknown_outbox");
      });
    });

    describe(`answersTo`, () => {
      const byId = (answers: InboundAnswer[]) => [...answers].sort((a, b) => a.id - b.id);

      it("tells where each message stands, with the reply only for an answered one", async () => {
        const received = await journal.recordInbound(message({ chatId: "alice" }));
        const delivered = await journal.recordInbound(message({ chatId: "bob" }));
        const answered = await journal.recordInbound(message({ chatId: "carol" }));
        const rejected = await journal.recordInbound(message({ chatId: "dave" }));
        await journal.markDelivered(delivered.id);
        await journal.markAnswered([answered.id], {
          channel: "http",
          chatId: "carol",
          parts: ["first part", "second part", "third part"],
        });
        await journal.markRejected(rejected.id, "rate_limited", "too many messages");
        const answers = await journal.answersTo([
          received.id,
          delivered.id,
          answered.id,
          rejected.id,
        ]);
        expect(byId(answers)).toEqual([
          { id: received.id, chatId: "alice", status: "received", reply: [] },
          { id: delivered.id, chatId: "bob", status: "delivered", reply: [] },
          {
            id: answered.id,
            chatId: "carol",
            status: "answered",
            reply: ["first part", "second part", "third part"],
          },
          { id: rejected.id, chatId: "dave", status: "rejected", reply: [] },
        ]);
      });

      it("gives every message of a turn the turn's reply, held by the last", async () => {
        const first = await journal.recordInbound(message({ chatId: "alice" }));
        const second = await journal.recordInbound(message({ chatId: "alice" }));
        const third = await journal.recordInbound(message({ chatId: "alice" }));
        await journal.markAnswered([first.id, second.id], {
          channel: "http",
          chatId: "alice",
          parts: ["one reply", "in two parts"],
        });
        await journal.markAnswered([third.id], { channel: "http", chatId: "alice", parts: [] });
        expect(byId(await journal.answersTo([first.id, second.id, third.id]))).toEqual([
          {
            id: first.id,
            chatId: "alice",
            status: "answered",
            reply: ["one reply", "in two parts"],
          },
          {
            id: second.id,
            chatId: "alice",
            status: "answered",
            reply: ["one reply", "in two parts"],
          },
          // Answered with silence: answered, nothing to say.
          { id: third.id, chatId: "alice", status: "answered", reply: [] },
        ]);
        // Asked for alone, the first still gets the reply its turn's last message holds.
        expect(await journal.answersTo([first.id])).toEqual([
          {
            id: first.id,
            chatId: "alice",
            status: "answered",
            reply: ["one reply", "in two parts"],
          },
        ]);
      });

      it("tells a message a failed turn answered from one answered with silence", async () => {
        // Without it, a request waiting on another node of a cluster got reply null for a turn
        // that failed, where the node running the session answers 502 agent_error.
        const failed = await journal.recordInbound(message({ chatId: "alice" }));
        const silent = await journal.recordInbound(message({ chatId: "alice" }));
        await journal.markAnswered([failed.id], {
          channel: "http",
          chatId: "alice",
          parts: [],
          failure: "the API was overloaded",
        });
        await journal.markAnswered([silent.id], { channel: "http", chatId: "alice", parts: [] });
        expect(byId(await journal.answersTo([failed.id, silent.id]))).toEqual([
          {
            id: failed.id,
            chatId: "alice",
            status: "answered",
            reply: [],
            failure: "the API was overloaded",
          },
          { id: silent.id, chatId: "alice", status: "answered", reply: [] },
        ]);
      });

      it("leaves out ids it never recorded", async () => {
        const known = await journal.recordInbound(message({ chatId: "alice" }));
        expect(await journal.answersTo([999, known.id, 1000])).toEqual([
          { id: known.id, chatId: "alice", status: "received", reply: [] },
        ]);
        expect(await journal.answersTo([999])).toEqual([]);
        expect(await journal.answersTo([])).toEqual([]);
      });
    });

    describe(`reply events (GET /v1/events, the reply webhook)`, () => {
      it("lists a channel's reply parts after an id, with the messages each answers, by their client ids", async () => {
        const a = await journal.recordInbound(message({ externalId: "client-a" }));
        const b = await journal.recordInbound(message({ externalId: undefined }));
        await journal.markAnswered([a.id, b.id], {
          channel: "http",
          chatId: "+15551234567",
          parts: ["x", "y"],
        });
        const c = await journal.recordInbound(message({ channel: "imessage" }));
        await journal.markAnswered([c.id], {
          channel: "imessage",
          chatId: "+15551234567",
          parts: ["z"],
        });
        const events = await journal.replyEventsAfter("http", 0, 10);
        expect(events).toEqual([
          {
            id: 1,
            inboundId: b.id,
            part: 0,
            parts: 2,
            chatId: "+15551234567",
            text: "x",
            messageIds: ["client-a", b.uuid],
            createdAt: new Date(clock.now()),
          },
          expect.objectContaining({ id: 2, part: 1, text: "y" }),
        ]);
        expect((await journal.replyEventsAfter("http", 1, 10)).map((event) => event.id)).toEqual([
          2,
        ]);
        expect((await journal.replyEventsAfter("http", 0, 1)).map((event) => event.id)).toEqual([
          1,
        ]);
        expect(await journal.lastReplyEventId("http")).toBe(2);
        expect(await journal.lastReplyEventId("signal")).toBe(0);
        expect(await journal.replyEvent(3)).toMatchObject({ text: "z", chatId: "+15551234567" });
        expect(await journal.replyEvent(99)).toBeUndefined();
      });

      it("numbers reply parts in the order they were recorded, never reusing a pruned one's", async () => {
        const first = await journal.recordInbound(message());
        await journal.markAnswered([first.id], {
          channel: "http",
          chatId: "+15551234567",
          parts: ["old"],
        });
        const [part] = await journal.unsentOutbox();
        await journal.markSent(part!.inboundId, part!.part);
        clock.advance(DEFAULT_RETENTION_MS + 1);
        expect(await journal.prune()).toEqual({ inbound: 1, outbox: 1 });
        expect(await journal.replyEvent(part!.id)).toBeUndefined();
        const second = await journal.recordInbound(message());
        const [row] = await journal.markAnswered([second.id], {
          channel: "http",
          chatId: "+15551234567",
          parts: ["new"],
        });
        expect(row!.id).toBeGreaterThan(part!.id);
        expect(await journal.lastReplyEventId("http")).toBe(row!.id);
      });
    });

    describe(`counts`, () => {
      it("counts every status, zero included", async () => {
        expect(await journal.counts()).toEqual({
          inbound: { received: 0, delivered: 0, answered: 0, rejected: 0 },
          outbox: { pending: 0, sent: 0, failed: 0, abandoned: 0 },
        });
        const ids: number[] = [];
        for (let index = 0; index < 4; index += 1)
          ids.push((await journal.recordInbound(message())).id);
        await journal.markDelivered(ids[1]!);
        await journal.markAnswered([ids[2]!], { channel: "http", chatId: "c", parts: ["a", "b"] });
        await journal.markRejected(ids[3]!, "x", "y");
        await journal.markSent(ids[2]!, 0);
        expect(await journal.counts()).toEqual({
          inbound: { received: 1, delivered: 1, answered: 1, rejected: 1 },
          outbox: { pending: 1, sent: 1, failed: 0, abandoned: 0 },
        });
      });
    });

    describe(`prune`, () => {
      async function answeredAndSent(externalId: string, parts = ["reply"]): Promise<number> {
        const { id } = await journal.recordInbound(message({ externalId }));
        await journal.markAnswered([id], { channel: "http", chatId: "c", parts });
        for (const index of parts.keys()) await journal.markSent(id, index);
        return id;
      }

      it("deletes old answered and rejected messages with their finished replies, nothing else", async () => {
        await answeredAndSent("old-sent", ["a", "b"]);
        const oldAbandoned = await journal.recordInbound(message({ externalId: "old-abandoned" }));
        await journal.markAnswered([oldAbandoned.id], {
          channel: "http",
          chatId: "c",
          parts: ["x"],
        });
        await journal.abandon(oldAbandoned.id, 0, "client gone");
        const oldRejected = await journal.recordInbound(message({ externalId: "old-rejected" }));
        await journal.markRejected(oldRejected.id, "unknown_sender", "no");
        const oldPendingReply = await journal.recordInbound(
          message({ externalId: "old-pending-reply" }),
        );
        await journal.markAnswered([oldPendingReply.id], {
          channel: "http",
          chatId: "c",
          parts: ["p"],
        });
        const oldFailedReply = await journal.recordInbound(
          message({ externalId: "old-failed-reply" }),
        );
        await journal.markAnswered([oldFailedReply.id], {
          channel: "http",
          chatId: "c",
          parts: ["f"],
        });
        await journal.markSendFailed(oldFailedReply.id, 0, "boom");
        await journal.recordInbound(message({ externalId: "old-received" }));
        const oldDelivered = await journal.recordInbound(message({ externalId: "old-delivered" }));
        await journal.markDelivered(oldDelivered.id);

        clock.advance(DEFAULT_RETENTION_MS + 1);
        await answeredAndSent("recent");

        expect(await journal.prune()).toEqual({ inbound: 3, outbox: 3 });
        const left = await hooks.externalIds();
        expect(left).toEqual([
          "old-pending-reply",
          "old-failed-reply",
          "old-received",
          "old-delivered",
          "recent",
        ]);
        expect(await journal.findByExternalId("http", "old-sent")).toBeUndefined();
        expect(await hooks.orphanedParts()).toBe(0);
      });

      it("prunes a turn's messages together, and only when the newest is old enough", async () => {
        const a = await journal.recordInbound(message({ externalId: "g-a" }));
        clock.advance(DAY_MS);
        const b = await journal.recordInbound(message({ externalId: "g-b" }));
        await journal.markAnswered([a.id, b.id], { channel: "http", chatId: "c", parts: ["r"] });
        await journal.markSent(b.id, 0);
        clock.advance(DAY_MS);
        expect(await journal.prune({ olderThanMs: 2 * DAY_MS })).toEqual({ inbound: 0, outbox: 0 });
        expect(await journal.prune({ olderThanMs: DAY_MS - 1 })).toEqual({ inbound: 2, outbox: 1 });
        expect(await hooks.tableCount("inbound")).toBe(0);
      });

      it("refuses a negative retention", async () => {
        await expectDispatchError(
          () => journal.prune({ olderThanMs: -1 }),
          "journal_invalid_retention",
        );
      });
    });
  });
}
