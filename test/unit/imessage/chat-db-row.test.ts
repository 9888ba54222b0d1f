import { describe, expect, it } from "vitest";
import {
  appleDateToUnixMs,
  parseChatDbRow,
  routeOf,
  type ChatDbRow,
  type ParsedRow,
} from "../../../src/channels/imessage/chat-db-row.js";
import { appleNanoseconds, encodeAttributedBody } from "../../support/chat-db.js";

const NOW_MS = Date.parse("2026-03-01T12:00:00.000Z");
const OPTIONS = { nowMs: NOW_MS, maxBackfillAgeMs: 300_000 };

function oneToOne(overrides: Partial<ChatDbRow> = {}): ChatDbRow {
  return {
    rowId: 42,
    guid: "5F1C7B8E-0000-4000-8000-000000000042",
    text: "hello",
    attributedBody: encodeAttributedBody("hello"),
    date: appleNanoseconds(NOW_MS - 2_000),
    isFromMe: 0,
    associatedMessageType: 0,
    itemType: 0,
    isSpam: 0,
    handle: "+15551234567",
    chatGuid: "iMessage;-;+15551234567",
    chatIdentifier: "+15551234567",
    chatStyle: 45,
    chatDisplayName: "",
    attachmentNames: "[]",
    ...overrides,
  };
}

function group(overrides: Partial<ChatDbRow> = {}): ChatDbRow {
  return oneToOne({
    handle: "+15557654321",
    chatGuid: "iMessage;+;chat123456789",
    chatIdentifier: "chat123456789",
    chatStyle: 43,
    chatDisplayName: "Family Chat",
    ...overrides,
  });
}

function message(parsed: ParsedRow) {
  if (parsed.kind !== "message") throw new Error(`expected a message, got skip ${parsed.reason}`);
  return parsed;
}

const skipReason = (row: ChatDbRow, options = OPTIONS) => {
  const parsed = parseChatDbRow(row, options);
  return parsed.kind === "skip" ? parsed.reason : "message";
};

describe("parseChatDbRow", () => {
  it("maps a one-to-one text: guid as external id, the handle as chat and sender", () => {
    const parsed = message(parseChatDbRow(oneToOne(), OPTIONS));
    expect(parsed.rowId).toBe(42);
    expect(parsed.message).toEqual({
      channel: "imessage",
      chatId: "+15551234567",
      sender: "+15551234567",
      text: "hello",
      externalId: "5F1C7B8E-0000-4000-8000-000000000042",
      receivedAt: new Date(NOW_MS - 2_000),
    });
    expect(parsed.route).toEqual({
      chatId: "+15551234567",
      kind: "buddy",
      recipient: "+15551234567",
    });
  });

  it("maps a group text: the chat identifier as chat, the display name, the member as sender", () => {
    const parsed = message(parseChatDbRow(group(), OPTIONS));
    expect(parsed.message.chatId).toBe("chat123456789");
    expect(parsed.message.groupName).toBe("Family Chat");
    expect(parsed.message.sender).toBe("+15557654321");
    expect(parsed.route).toEqual({
      chatId: "chat123456789",
      kind: "chat",
      recipient: "iMessage;+;chat123456789",
    });
  });

  it("leaves out the group name of an unnamed group (Messages stores an empty string)", () => {
    const parsed = message(parseChatDbRow(group({ chatDisplayName: "" }), OPTIONS));
    expect(parsed.message).not.toHaveProperty("groupName");
  });

  it("tells a group by its guid when the style is missing", () => {
    const parsed = message(parseChatDbRow(group({ chatStyle: null }), OPTIONS));
    expect(parsed.route.kind).toBe("chat");
    expect(message(parseChatDbRow(oneToOne({ chatStyle: null }), OPTIONS)).route.kind).toBe(
      "buddy",
    );
  });

  it("reads the words from attributedBody when text is NULL or empty", () => {
    const body = encodeAttributedBody("only in the body 🎉");
    for (const text of [null, ""]) {
      const parsed = message(parseChatDbRow(oneToOne({ text, attributedBody: body }), OPTIONS));
      expect(parsed.message.text).toBe("only in the body 🎉");
    }
  });

  it("uses the chat identifier when the row has no handle (LEFT JOIN found none)", () => {
    const parsed = message(parseChatDbRow(oneToOne({ handle: null }), OPTIONS));
    expect(parsed.message.chatId).toBe("+15551234567");
    expect(parsed.message.sender).toBe("+15551234567");
    const inGroup = message(parseChatDbRow(group({ handle: null }), OPTIONS));
    expect(inGroup.message.chatId).toBe("chat123456789");
    expect(inGroup.message).not.toHaveProperty("sender");
  });

  it("skips own messages, tapbacks and their removal, other associated rows, group events, junk", () => {
    expect(skipReason(oneToOne({ isFromMe: 1 }))).toBe("from-me");
    for (const type of [2000, 2001, 2002, 2003, 2004, 2005, 2006, 3000, 3005]) {
      expect(skipReason(oneToOne({ associatedMessageType: type, text: "Loved “hi”" }))).toBe(
        "tapback",
      );
    }
    expect(skipReason(oneToOne({ associatedMessageType: 1000 }))).toBe("associated");
    expect(skipReason(group({ itemType: 1, text: null, attributedBody: null }))).toBe("system");
    expect(skipReason(oneToOne({ isSpam: 1 }))).toBe("spam");
  });

  it("skips rows older than the backfill bound, keeps those within it", () => {
    const old = oneToOne({ date: appleNanoseconds(NOW_MS - 300_001) });
    const recent = oneToOne({ date: appleNanoseconds(NOW_MS - 299_000) });
    expect(skipReason(old)).toBe("backfill");
    expect(skipReason(recent)).toBe("message");
    expect(skipReason(old, { nowMs: NOW_MS, maxBackfillAgeMs: 0 })).toBe("message");
  });

  it("reads the older seconds-since-2001 date format", () => {
    const seconds = Math.floor((NOW_MS - 10_000 - Date.UTC(2001, 0, 1)) / 1000);
    const parsed = message(parseChatDbRow(oneToOne({ date: seconds }), OPTIONS));
    expect(parsed.message.receivedAt.toISOString()).toBe("2026-03-01T11:59:50.000Z");
    expect(skipReason(oneToOne({ date: seconds - 3600 }))).toBe("backfill");
  });

  it("skips rows with neither words nor files", () => {
    expect(skipReason(oneToOne({ text: null, attributedBody: null }))).toBe("no-text");
    expect(skipReason(oneToOne({ text: "   ", attributedBody: null }))).toBe("no-text");
    expect(skipReason(oneToOne({ text: null, attributedBody: Buffer.from("garbage") }))).toBe(
      "no-text",
    );
  });

  it("skips rows without a chat", () => {
    const parsed = parseChatDbRow(
      oneToOne({ chatGuid: null, chatIdentifier: null, chatStyle: null }),
      OPTIONS,
    );
    expect(parsed).toMatchObject({ kind: "skip", reason: "no-chat" });
  });

  it("notes attachments in place of their U+FFFC placeholders", () => {
    const names = JSON.stringify(["IMG_0042.jpeg", "~/Library/Messages/Attachments/a/b/c/doc.pdf"]);
    const cases: [string | null, string][] = [
      ["\uFFFC", "[attachment: IMG_0042.jpeg] [attachment: doc.pdf]"],
      [
        "\uFFFC\uFFFCLook at these",
        "[attachment: IMG_0042.jpeg] [attachment: doc.pdf] Look at these",
      ],
      ["Before\uFFFCafter\uFFFC", "Before [attachment: IMG_0042.jpeg] after [attachment: doc.pdf]"],
      [
        "No placeholder  here",
        "No placeholder  here [attachment: IMG_0042.jpeg] [attachment: doc.pdf]",
      ],
    ];
    for (const [text, expected] of cases) {
      const row = oneToOne({ text, attachmentNames: names });
      expect(message(parseChatDbRow(row, OPTIONS)).message.text).toBe(expected);
    }
    const bodyOnly = oneToOne({
      text: null,
      attributedBody: encodeAttributedBody("\uFFFCcaption"),
      attachmentNames: JSON.stringify(["IMG_0042.jpeg"]),
    });
    expect(message(parseChatDbRow(bodyOnly, OPTIONS)).message.text).toBe(
      "[attachment: IMG_0042.jpeg] caption",
    );
  });

  it("drops a placeholder without a file row, and names a nameless file", () => {
    expect(skipReason(oneToOne({ text: "\uFFFC", attachmentNames: "[]" }))).toBe("no-text");
    const row = oneToOne({ text: "\uFFFC", attachmentNames: "[null]" });
    expect(message(parseChatDbRow(row, OPTIONS)).message.text).toBe("[attachment: file]");
  });
});

describe("routeOf", () => {
  it("needs a chat guid", () => {
    expect(routeOf(oneToOne({ chatGuid: null }))).toBeUndefined();
    expect(routeOf(group({ chatIdentifier: null }))).toBeUndefined();
  });
});

describe("appleDateToUnixMs", () => {
  it("reads nanoseconds and seconds since 2001, and treats 0 and NULL as unknown", () => {
    expect(appleDateToUnixMs(0)).toBeUndefined();
    expect(appleDateToUnixMs(null)).toBeUndefined();
    expect(appleDateToUnixMs(1_000_000_000)).toBe(Date.UTC(2032, 8, 9, 1, 46, 40));
    expect(appleDateToUnixMs(794_000_000_000_000_000n)).toBe(Date.UTC(2026, 1, 28, 19, 33, 20));
  });
});
