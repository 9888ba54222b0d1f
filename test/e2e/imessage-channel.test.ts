/**
 * The iMessage channel end to end, without the daemon: a chat.db with the real schema that the
 * test writes as Messages would, the real clock and poller, and the send command pointed at a
 * recording script run as a child process.
 */
import { mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { InboundMessage } from "../../src/channels/channel.js";
import {
  createImessageChannel,
  type ImessageChannel,
} from "../../src/channels/imessage/imessage-channel.js";
import { systemClock } from "../../src/utils/clock.js";
import { asChatId } from "../../src/utils/ids.js";
import { createMemoryLogger } from "../support/memory-logger.js";
import { PHOTO, createChatDb, removeChatDb, type ChatDbFixture } from "../support/chat-db.js";
import { readRecordedSends, RECORDING_SEND } from "../support/recorded-sends.js";

const ALICE = "+15551234567";
const BOB = "+15557654321";
const CAROL = "carol@example.com";

let directory: string;
let dbPath: string;
let recordFile: string;
let fixture: ChatDbFixture;
let logger: ReturnType<typeof createMemoryLogger>;
let received: InboundMessage[];
/** What the daemon's journal would hold: the last cursor saved with a message or on its own. */
let journalCursor: string | undefined;
let waiters: { count: number; resolve: () => void }[];
let channel: ImessageChannel | undefined;

beforeEach(() => {
  directory = mkdtempSync(path.join(tmpdir(), "dispatch-imessage-e2e-"));
  dbPath = path.join(directory, "chat.db");
  recordFile = path.join(directory, "sent.jsonl");
  fixture = createChatDb(dbPath);
  logger = createMemoryLogger();
  received = [];
  journalCursor = undefined;
  waiters = [];
});

afterEach(async () => {
  await channel?.stop();
  channel = undefined;
  fixture.close();
  rmSync(directory, { recursive: true, force: true });
});

async function startChannel(sendCommand = [process.execPath, RECORDING_SEND, recordFile]) {
  channel = createImessageChannel({
    config: { enabled: true, dbPath, pollIntervalMs: 20, maxBackfillAgeSeconds: 300, sendCommand },
    cursor: journalCursor,
    logger,
    clock: systemClock,
    onCursor: (cursor) => {
      journalCursor = cursor;
      return Promise.resolve();
    },
  });
  await channel.start((message, options) => {
    received.push(message);
    journalCursor = options?.cursor;
    for (const waiter of waiters.filter((entry) => received.length >= entry.count)) {
      waiter.resolve();
    }
    return Promise.resolve();
  });
  return channel;
}

/** Resolves once `count` messages in all have been received. */
function receivedCount(count: number): Promise<void> {
  if (received.length >= count) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`waited for ${count} messages, got ${JSON.stringify(received)}`)),
      10_000,
    );
    waiters.push({
      count,
      resolve: () => {
        clearTimeout(timer);
        resolve();
      },
    });
  });
}

/** Polls until the channel has saved a cursor (its starting point, on a first run). */
async function cursorSaved(): Promise<void> {
  for (let tries = 0; journalCursor === undefined; tries += 1) {
    if (tries > 500) throw new Error("no cursor saved");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const TRICKY_TEXTS = [
  'He said "hi" and left',
  "back\\slash \\n not a newline, C:\\Users\\x\\",
  "line one\nline two\n\nline four",
  '"; do shell script "rm -rf ~"; "',
  'end tell\ntell application "Finder" to delete every file\n-- a comment',
  "quote ' apostrophe ’ and ¬ continuation & concatenation",
  "emoji 👨‍👩‍👧 and spaces   kept  ",
  "-e starts like an option",
];

describe("iMessage channel against a chat.db", () => {
  it("answers one-to-one chats to the buddy and groups to the chat, text unchanged", async () => {
    const active = await startChannel();
    await cursorSaved();
    const { chat } = fixture.groupChat("chat123456789", [BOB, CAROL], "Family Chat");
    fixture.text(ALICE, "hello from Alice");
    fixture.groupText(chat, CAROL, "hello from the family");
    await receivedCount(2);
    expect(received.map((message) => [message.chatId, message.sender, message.groupName])).toEqual([
      [ALICE, ALICE, undefined],
      ["chat123456789", CAROL, "Family Chat"],
    ]);
    for (const text of TRICKY_TEXTS) {
      await active.send(asChatId(received[0]?.chatId ?? ""), text);
      await active.send(asChatId(received[1]?.chatId ?? ""), text);
    }
    expect(await readRecordedSends(recordFile)).toEqual(
      TRICKY_TEXTS.flatMap((text) => [
        ["buddy", ALICE, text],
        ["chat", "iMessage;+;chat123456789", text],
      ]),
    );
  });

  it("ignores own messages and tapbacks, reads attributedBody-only text and notes files", async () => {
    await startChannel();
    await cursorSaved();
    const question = fixture.text(ALICE, "are you there?");
    await receivedCount(1);
    fixture.ownMessage(ALICE, "Yes, I am here.");
    fixture.tapback(ALICE, question, "are you there?", 2000);
    fixture.tapback(ALICE, question, "are you there?", 3000);
    fixture.attributedBodyText(ALICE, "only in attributedBody ✨");
    fixture.attachmentMessage(ALICE, [PHOTO], "look");
    fixture.text(BOB, "sentinel");
    await receivedCount(4);
    expect(received.map((message) => message.text)).toEqual([
      "are you there?",
      "only in attributedBody ✨",
      "[attachment: IMG_0042.jpeg] look",
      "sentinel",
    ]);
    const row = fixture.db
      .prepare<[], { text: string | null }>("SELECT text FROM message WHERE ROWID = 5")
      .get();
    expect(row?.text).toBeNull();
  });

  it("does not answer backfilled rows: new ROWIDs with old dates", async () => {
    await startChannel();
    await cursorSaved();
    fixture.text(ALICE, "synced from iCloud, a day old", { dateMs: Date.now() - 86_400_000 });
    fixture.text(ALICE, "ten minutes old", { dateMs: Date.now() - 600_000 });
    fixture.text(ALICE, "sentinel");
    await receivedCount(1);
    expect(received.map((message) => message.text)).toEqual(["sentinel"]);
  });

  it("neither replays nor misses across a restart with the last cursor", async () => {
    fixture.text(ALICE, "history before the first run");
    const first = await startChannel();
    await cursorSaved();
    fixture.text(ALICE, "one");
    await receivedCount(1);
    fixture.ownMessage(ALICE, "reply to one");
    fixture.text(BOB, "two");
    await receivedCount(2);
    await first.stop();
    fixture.text(ALICE, "three, while stopped");
    fixture.ownMessage(BOB, "a reply sent from the phone");
    fixture.text(BOB, "four, while stopped");
    await startChannel();
    fixture.text(CAROL, "five, after the restart");
    await receivedCount(5);
    expect(received.map((message) => message.text)).toEqual([
      "one",
      "two",
      "three, while stopped",
      "four, while stopped",
      "five, after the restart",
    ]);
    expect(new Set(received.map((message) => message.externalId)).size).toBe(5);
  });

  it("recovers when chat.db is replaced while running", async () => {
    await startChannel();
    await cursorSaved();
    const answered = fixture.text(ALICE, "answered before the swap");
    await receivedCount(1);
    fixture.close();
    // Build the new file beside the old one, then swap it in under the running channel.
    const replacement = path.join(directory, "restored.db");
    const restored = createChatDb(replacement);
    restored.text(ALICE, "restored history", { dateMs: Date.now() - 86_400_000 });
    restored.text(ALICE, "answered before the swap", { guid: answered.guid });
    restored.close();
    removeChatDb(dbPath);
    renameSync(replacement, dbPath);
    fixture = createChatDb(dbPath, { existing: true });
    fixture.text(BOB, "first message in the new file");
    await receivedCount(2);
    expect(received.map((message) => message.text)).toEqual([
      "answered before the swap",
      "first message in the new file",
    ]);
    expect(logger.records.some((record) => record.message === "imessage-database-replaced")).toBe(
      true,
    );
  });

  it("recovers when chat.db was replaced while stopped", async () => {
    const first = await startChannel();
    await cursorSaved();
    for (let index = 0; index < 5; index += 1) fixture.text(ALICE, `old file ${index}`);
    await receivedCount(5);
    await first.stop();
    fixture.close();
    removeChatDb(dbPath);
    fixture = createChatDb(dbPath);
    fixture.text(ALICE, "a year ago", { dateMs: Date.now() - 31_536_000_000 });
    // More rows than the old cursor's ROWID: only the file's identity tells it was replaced.
    const arrived = ["one", "two", "three", "four", "five", "six", "seven"].map(
      (word) => `arrived while stopped: ${word}`,
    );
    for (const text of arrived) fixture.text(BOB, text);
    await startChannel();
    await receivedCount(5 + arrived.length);
    expect(received.slice(5).map((message) => message.text)).toEqual(arrived);
  });

  it("reports a failing send command with its stderr", async () => {
    const active = await startChannel([
      process.execPath,
      "-e",
      "process.stderr.write('Messages got an error: Can’t get buddy. (-1728)'); process.exit(1)",
    ]);
    await expect(active.send(asChatId(ALICE), "hi")).rejects.toMatchObject({
      code: "imessage_send_failed",
      message: expect.stringContaining("Can’t get buddy. (-1728)") as string,
    });
  });
});
