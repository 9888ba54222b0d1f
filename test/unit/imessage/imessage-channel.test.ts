import { mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { InboundMessage, InboundSink } from "../../../src/channels/channel.js";
import {
  createImessageChannel,
  type ImessageChannel,
  type ImessageChannelDeps,
} from "../../../src/channels/imessage/imessage-channel.js";
import { parseCursor } from "../../../src/channels/imessage/cursor.js";
import type { CommandResult, RunCommand } from "../../../src/channels/imessage/send-message.js";
import { ManualClock } from "../../support/manual-clock.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { asChatId } from "../../../src/utils/ids.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { createChatDb, removeChatDb, type ChatDbFixture } from "../../support/chat-db.js";
import { deferred, type Deferred } from "../../support/deferred.js";

const POLL_MS = 500;
const ALICE = "+15551234567";
const BOB = "+15557654321";

interface Received {
  message: InboundMessage;
  cursor: string | undefined;
}

let directory: string;
let dbPath: string;
let clock: ManualClock;
let fixture: ChatDbFixture;
let logger: ReturnType<typeof createMemoryLogger>;
let received: Received[];
let sinkCalls: number;
let sinkFailures: number;
let sinkGate: Deferred | undefined;
let savedCursors: string[];
let commands: (readonly string[])[];
let commandResult: CommandResult;
let channels: ImessageChannel[];

const sink: InboundSink = async (message, options) => {
  sinkCalls += 1;
  if (sinkFailures > 0) {
    sinkFailures -= 1;
    throw new Error("journal is busy");
  }
  if (sinkGate) await sinkGate.promise;
  received.push({ message, cursor: options?.cursor });
};

const recordCommand: RunCommand = (argv) => {
  commands.push(argv);
  return Promise.resolve(commandResult);
};

beforeEach(() => {
  directory = mkdtempSync(path.join(tmpdir(), "dispatch-imessage-"));
  dbPath = path.join(directory, "chat.db");
  clock = new ManualClock(Date.parse("2026-03-01T12:00:00.000Z"));
  fixture = createChatDb(dbPath, { now: () => clock.now() });
  logger = createMemoryLogger();
  received = [];
  sinkCalls = 0;
  sinkFailures = 0;
  sinkGate = undefined;
  savedCursors = [];
  commands = [];
  commandResult = { exitCode: 0, signal: null, stdout: "", stderr: "", timedOut: false };
  channels = [];
});

afterEach(async () => {
  sinkGate?.resolve();
  for (const channel of channels) await channel.stop();
  fixture.close();
  rmSync(directory, { recursive: true, force: true });
});

function makeChannel(overrides: Partial<ImessageChannelDeps> = {}): ImessageChannel {
  const channel = createImessageChannel({
    config: { enabled: true, dbPath, pollIntervalMs: POLL_MS, maxBackfillAgeSeconds: 300 },
    cursor: undefined,
    logger,
    clock,
    runCommand: recordCommand,
    onCursor: (cursor) => {
      savedCursors.push(cursor);
      return Promise.resolve();
    },
    ...overrides,
  });
  channels.push(channel);
  return channel;
}

async function tick(channel: ImessageChannel, times = 1) {
  for (let index = 0; index < times; index += 1) {
    clock.advance(POLL_MS);
    await channel.whenIdle();
  }
}

const texts = () => received.map((entry) => entry.message.text);
const rowIdOf = (cursor: string | undefined) => parseCursor(cursor ?? "")?.rowId;

describe("iMessage channel: reading", () => {
  it("starts from now: the history is not delivered, a new message is, with its cursor", async () => {
    fixture.text(ALICE, "old history");
    const channel = makeChannel();
    await channel.start(sink);
    await tick(channel);
    expect(received).toEqual([]);
    const hello = fixture.text(ALICE, "hello");
    await tick(channel);
    expect(received).toHaveLength(1);
    expect(received[0]?.message).toMatchObject({
      channel: "imessage",
      chatId: ALICE,
      sender: ALICE,
      text: "hello",
      externalId: hello.guid,
    });
    expect(parseCursor(received[0]?.cursor ?? "")).toEqual({
      rowId: hello.rowId,
      dbId: expect.any(String) as string,
    });
  });

  it("hands rows over one at a time in ROWID order, each after the last was recorded", async () => {
    const channel = makeChannel();
    await channel.start(sink);
    fixture.text(ALICE, "one");
    fixture.text(BOB, "two");
    fixture.text(ALICE, "three");
    sinkGate = deferred();
    clock.advance(POLL_MS);
    await Promise.resolve();
    expect(sinkCalls).toBe(1);
    sinkGate.resolve();
    await channel.whenIdle();
    expect(texts()).toEqual(["one", "two", "three"]);
    expect(received.map((entry) => rowIdOf(entry.cursor))).toEqual([1, 2, 3]);
  });

  it("skips own messages, tapbacks and backfill, logs why at debug, saves the advance", async () => {
    const channel = makeChannel();
    await channel.start(sink);
    await tick(channel);
    const hello = fixture.text(ALICE, "hello");
    await tick(channel);
    fixture.ownMessage(ALICE, "Hi! How can I help?");
    fixture.tapback(ALICE, hello, "hello", 2001);
    fixture.text(ALICE, "synced from iCloud", { dateMs: clock.now() - 3_600_000 });
    await tick(channel);
    expect(texts()).toEqual(["hello"]);
    const skips = logger.records.filter((record) => record.message === "imessage-row-skip");
    expect(skips.map((record) => [record.level, record.fields.reason])).toEqual([
      ["debug", "from-me"],
      ["debug", "tapback"],
      ["debug", "backfill"],
    ]);
    expect(rowIdOf(savedCursors.at(-1))).toBe(4);
    expect(
      logger.records.find((record) => record.message === "imessage-backfill-skip"),
    ).toMatchObject({
      level: "info",
      fields: { count: 1 },
    });
  });

  it("saves the first run's starting point, so a restart before any message misses nothing", async () => {
    fixture.text(ALICE, "history");
    const first = makeChannel();
    await first.start(sink);
    await tick(first);
    expect(savedCursors).toHaveLength(1);
    expect(rowIdOf(savedCursors[0])).toBe(1);
    await first.stop();
    fixture.text(ALICE, "while dispatch was down");
    const second = makeChannel({ cursor: savedCursors[0] });
    await second.start(sink);
    await tick(second);
    expect(texts()).toEqual(["while dispatch was down"]);
  });

  it("without onCursor, skipped rows are covered by the next message's cursor", async () => {
    const channel = makeChannel({ onCursor: undefined });
    await channel.start(sink);
    fixture.ownMessage(ALICE, "reply");
    fixture.ownMessage(ALICE, "another reply");
    await tick(channel);
    expect(channel.currentCursor()).toContain('"rowId":2');
    fixture.text(ALICE, "next");
    await tick(channel);
    expect(rowIdOf(received[0]?.cursor)).toBe(3);
  });

  it("keeps its place when the sink rejects, and retries the same row with backoff", async () => {
    const channel = makeChannel();
    await channel.start(sink);
    fixture.text(ALICE, "first");
    fixture.text(ALICE, "second");
    sinkFailures = 2;
    await tick(channel);
    expect(sinkCalls).toBe(1);
    expect(received).toEqual([]);
    const warning = logger.records.find((r) => r.message === "imessage message record failed");
    expect(warning).toMatchObject({ level: "warn", fields: { rowId: 1, retryInMs: 500 } });
    await tick(channel);
    expect(sinkCalls).toBe(2);
    await tick(channel);
    expect(sinkCalls).toBe(2);
    await tick(channel);
    expect(texts()).toEqual(["first", "second"]);
    expect(received.map((entry) => rowIdOf(entry.cursor))).toEqual([1, 2]);
  });

  it("treats a database that is briefly gone as transient", async () => {
    const channel = makeChannel();
    await channel.start(sink);
    fixture.text(ALICE, "before");
    renameSync(dbPath, `${dbPath}.moved`);
    await tick(channel);
    expect(received).toEqual([]);
    expect(
      logger.records.some((r) => r.message === "imessage poll failed" && r.level === "warn"),
    ).toBe(true);
    renameSync(`${dbPath}.moved`, dbPath);
    await tick(channel, 2);
    expect(texts()).toEqual(["before"]);
  });

  it("waits for a chat join Messages writes late, and gives up after the grace", async () => {
    const channel = makeChannel({ chatJoinGraceMs: 2_000 });
    await channel.start(sink);
    const { chat } = fixture.groupChat("chat42", [BOB], "Team");
    const late = fixture.groupText(chat, BOB, "join comes later", { withoutChatJoin: true });
    fixture.text(ALICE, "after it");
    await tick(channel);
    expect(received).toEqual([]);
    fixture.db
      .prepare("INSERT INTO chat_message_join (chat_id, message_id, message_date) VALUES (?, ?, 0)")
      .run(chat.rowId, late.rowId);
    await tick(channel);
    expect(received.map((entry) => entry.message.chatId)).toEqual(["chat42", ALICE]);

    fixture.text(BOB, "never joined", { withoutChatJoin: true });
    fixture.text(ALICE, "behind it");
    await tick(channel, 3);
    expect(texts()).toEqual(["join comes later", "after it"]);
    await tick(channel, 2);
    expect(texts()).toEqual(["join comes later", "after it", "behind it"]);
    expect(logger.records.some((r) => r.message === "imessage-row-without-chat-skipped")).toBe(
      true,
    );
  });

  it("recovers from a database replaced while running, without replaying", async () => {
    const channel = makeChannel();
    await channel.start(sink);
    const seen = fixture.text(ALICE, "already answered");
    await tick(channel);
    expect(texts()).toEqual(["already answered"]);
    fixture.close();
    removeChatDb(dbPath);
    fixture = createChatDb(dbPath, { now: () => clock.now() });
    fixture.text(ALICE, "old, restored", { dateMs: clock.now() - 3_600_000 });
    fixture.text(ALICE, "already answered", { guid: seen.guid });
    fixture.text(BOB, "new in the new file");
    await tick(channel);
    expect(texts()).toEqual(["already answered", "new in the new file"]);
    const warning = logger.records.find((r) => r.message === "imessage-database-replaced");
    expect(warning?.level).toBe("warn");
    expect(rowIdOf(received[1]?.cursor)).toBe(3);
  });

  it("recovers when the rows are rebuilt in place with lower ROWIDs", async () => {
    const channel = makeChannel();
    await channel.start(sink);
    for (let index = 0; index < 3; index += 1) fixture.text(ALICE, `before ${index}`);
    await tick(channel);
    fixture.db.exec("DELETE FROM message; DELETE FROM sqlite_sequence WHERE name = 'message'");
    fixture.text(BOB, "after the rebuild");
    await tick(channel);
    expect(texts()).toEqual(["before 0", "before 1", "before 2", "after the rebuild"]);
    expect(
      logger.records.find((r) => r.message === "imessage-database-replaced")?.fields.reason,
    ).toBe("rows went back");
    expect(rowIdOf(received[3]?.cursor)).toBe(1);
  });

  it("stop waits for the poll in progress, then polls no more", async () => {
    const channel = makeChannel();
    await channel.start(sink);
    fixture.text(ALICE, "slow to record");
    sinkGate = deferred();
    clock.advance(POLL_MS);
    let stopped = false;
    const stopping = channel.stop().then(() => (stopped = true));
    await Promise.resolve();
    expect(stopped).toBe(false);
    sinkGate.resolve();
    await stopping;
    expect(texts()).toEqual(["slow to record"]);
    fixture.text(ALICE, "after stop");
    clock.advance(POLL_MS * 4);
    await channel.whenIdle();
    expect(sinkCalls).toBe(1);
  });

  it("fails to start, saying how to fix it, when chat.db cannot be read", async () => {
    const missing = makeChannel({
      config: {
        enabled: true,
        dbPath: path.join(directory, "nope.db"),
        pollIntervalMs: 500,
        maxBackfillAgeSeconds: 300,
      },
    });
    await expect(missing.start(sink)).rejects.toMatchObject({
      code: "imessage_unavailable",
      message: expect.stringContaining("channels.imessage.enabled") as string,
    });
    const folder = path.join(directory, "folder.db");
    mkdirSync(folder);
    const unreadable = makeChannel({
      config: { enabled: true, dbPath: folder, pollIntervalMs: 500, maxBackfillAgeSeconds: 300 },
    });
    const error = await unreadable.start(sink).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DispatchError);
    expect((error as Error).message).toContain("Full Disk Access");
  });

  it("refuses a second start", async () => {
    const channel = makeChannel();
    await channel.start(sink);
    await expect(channel.start(sink)).rejects.toMatchObject({ code: "imessage_already_started" });
  });
});

describe("iMessage channel: sending", () => {
  it("sends to the buddy for one-to-one chats and to the chat's guid for groups", async () => {
    const channel = makeChannel({
      config: {
        enabled: true,
        dbPath,
        pollIntervalMs: 500,
        maxBackfillAgeSeconds: 300,
        sendCommand: ["/bin/send"],
      },
    });
    await channel.start(sink);
    const { chat } = fixture.groupChat("chat123456789", [BOB], "Family");
    fixture.groupText(chat, BOB, "hi group");
    fixture.text(ALICE, "hi");
    await tick(channel);
    await channel.send(asChatId(ALICE), "reply one");
    await channel.send(asChatId("chat123456789"), "reply two");
    expect(commands).toEqual([
      ["/bin/send", "buddy", ALICE, "reply one"],
      ["/bin/send", "chat", "iMessage;+;chat123456789", "reply two"],
    ]);
  });

  it("finds a group's guid in chat.db when no message from it was read yet", async () => {
    const channel = makeChannel();
    fixture.groupChat("chat555", [BOB]);
    await channel.start(sink);
    await channel.send(asChatId("chat555"), "hello");
    expect(commands[0]?.slice(-3)).toEqual(["chat", "iMessage;+;chat555", "hello"]);
    await channel.send(asChatId("chat999"), "unknown group");
    expect(commands[1]?.slice(-3)).toEqual(["chat", "iMessage;+;chat999", "unknown group"]);
    await channel.send(asChatId("someone@example.com"), "unknown person");
    expect(commands[2]?.slice(-3)).toEqual(["buddy", "someone@example.com", "unknown person"]);
  });

  it("passes the text as one argument, unchanged but for NUL", async () => {
    const channel = makeChannel();
    const text = 'say "hi"\\n\nend tell\n"; do shell script "rm -rf ~"';
    await channel.send(asChatId(ALICE), text);
    await channel.send(asChatId(ALICE), "a\0b");
    expect(commands[0]?.at(-1)).toBe(text);
    expect(commands[1]?.at(-1)).toBe("ab");
    expect(commands[0]?.[0]).toBe("osascript");
    expect(commands[0]?.slice(0, -1).join("\n")).not.toContain("rm -rf");
  });

  it("reports a failed send with the command's stderr and what to do", async () => {
    const channel = makeChannel();
    commandResult = {
      exitCode: 1,
      signal: null,
      stdout: "",
      stderr: "execution error: Not authorized to send Apple events to Messages. (-1743)\n",
      timedOut: false,
    };
    const error = await channel.send(asChatId(ALICE), "hi").catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DispatchError);
    expect(error).toMatchObject({ code: "imessage_send_failed" });
    expect((error as Error).message).toContain("Not authorized to send Apple events to Messages");
    expect((error as Error).message).toContain("Automation");
  });

  it("reports a send command that cannot start or times out", async () => {
    const channel = makeChannel({
      runCommand: () =>
        Promise.reject(Object.assign(new Error("spawn nope ENOENT"), { code: "ENOENT" })),
    });
    await expect(channel.send(asChatId(ALICE), "hi")).rejects.toMatchObject({
      code: "imessage_send_failed",
      message: expect.stringContaining("channels.imessage.sendCommand") as string,
    });
    const slow = makeChannel();
    commandResult = { exitCode: null, signal: "SIGKILL", stdout: "", stderr: "", timedOut: true };
    await expect(slow.send(asChatId(ALICE), "hi")).rejects.toMatchObject({
      message: expect.stringContaining("timed out") as string,
    });
  });
});
