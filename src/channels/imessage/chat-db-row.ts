/**
 * One row of the reader's query (a `message` joined to its chat, handle and attachments) turned
 * into an inbound message, or into the reason it is not one. Pure: no database, no clock.
 */
import type { InboundMessage } from "../channel.js";
import { decodeAttributedBody } from "./attributed-body.js";

export const IMESSAGE_CHANNEL = "imessage";

/** What the reader selects for each message; columns missing on older macOS come back NULL. */
export interface ChatDbRow {
  rowId: number;
  guid: string | null;
  text: string | null;
  attributedBody: Uint8Array | null;
  /** Nanoseconds since 2001-01-01 (macOS 10.13+), or seconds on older databases. */
  date: number | bigint | null;
  isFromMe: number | null;
  associatedMessageType: number | null;
  itemType: number | null;
  isSpam: number | null;
  /** The sender's handle (`+15551234567`, `someone@example.com`); NULL without a handle row. */
  handle: string | null;
  chatGuid: string | null;
  chatIdentifier: string | null;
  /** 43 for a group chat, 45 for one-to-one. */
  chatStyle: number | null;
  chatDisplayName: string | null;
  /** A JSON array of the attachments' names, in order; NULL or `[]` without attachments. */
  attachmentNames: string | null;
}

export type SkipReason =
  /** The Mac's own account sent it: the assistant's replies, or the owner typing. */
  | "from-me"
  /** A reaction (tapback) to another message, or its removal. */
  | "tapback"
  /** Another message pointing at a message: a sticker placed on it, a poll vote, ... */
  | "associated"
  /** A group event: a member added or left, the name or photo changed, ... */
  | "system"
  /** Filed as junk by Messages. */
  | "spam"
  /** Older than the backfill bound: iCloud sync, or dispatch was away longer than that. */
  | "backfill"
  /** Neither words nor attachments. */
  | "no-text"
  /** No chat joined (yet): Messages may write the join row a moment after the message. */
  | "no-chat";

export interface ChatRoute {
  /** The chat id the channel reports: the handle, or the group's chat identifier. */
  chatId: string;
  kind: "buddy" | "chat";
  /** A handle for `buddy`; the chat's guid (`iMessage;+;chat123`) for `chat`. */
  recipient: string;
}

export type ParsedRow =
  | { kind: "message"; rowId: number; message: InboundMessage; route: ChatRoute }
  | { kind: "skip"; rowId: number; reason: SkipReason; route?: ChatRoute };

export interface ParseOptions {
  nowMs: number;
  /** Rows dated further back than this are backfill. Zero turns the check off. */
  maxBackfillAgeMs: number;
}

/** Milliseconds from 1970-01-01 to 2001-01-01, Apple's reference date. */
export const APPLE_EPOCH_MS = 978_307_200_000;
/** Below this a `date` is in seconds (the pre-2017 format); nanoseconds are far larger. */
const SECONDS_FORMAT_LIMIT = 100_000_000_000;
/** Where a file sits in the text: Messages writes U+FFFC, the object replacement character. */
const ATTACHMENT_PLACEHOLDER = "\uFFFC";
const GROUP_STYLE = 43;
const ONE_TO_ONE_STYLE = 45;

/** Unix milliseconds of a `message.date`; `undefined` when it is unset. */
export function appleDateToUnixMs(date: number | bigint | null): number | undefined {
  if (date === null) return undefined;
  const value = Number(date);
  if (!Number.isFinite(value) || value === 0) return undefined;
  if (Math.abs(value) < SECONDS_FORMAT_LIMIT) return APPLE_EPOCH_MS + value * 1000;
  return APPLE_EPOCH_MS + value / 1_000_000;
}

/** Where a reply to this row's chat goes; `undefined` when the row names no chat. */
export function routeOf(row: ChatDbRow): ChatRoute | undefined {
  if (isGroup(row)) {
    if (!row.chatIdentifier || !row.chatGuid) return undefined;
    return { chatId: row.chatIdentifier, kind: "chat", recipient: row.chatGuid };
  }
  if (!row.chatGuid) return undefined;
  // The sender's handle; the chat identifier (the other party's handle) when the row has none.
  const handle = row.handle || row.chatIdentifier;
  if (!handle) return undefined;
  return { chatId: handle, kind: "buddy", recipient: handle };
}

export function parseChatDbRow(row: ChatDbRow, options: ParseOptions): ParsedRow {
  const { rowId } = row;
  const route = routeOf(row);
  const skip = (reason: SkipReason): ParsedRow => ({ kind: "skip", rowId, reason, route });

  if (row.isFromMe) return skip("from-me");
  const associated = row.associatedMessageType ?? 0;
  if (associated >= 2000 && associated < 4000) return skip("tapback");
  if (associated !== 0) return skip("associated");
  if (row.itemType) return skip("system");
  if (row.isSpam) return skip("spam");
  const sentMs = appleDateToUnixMs(row.date);
  if (
    options.maxBackfillAgeMs > 0 &&
    sentMs !== undefined &&
    options.nowMs - sentMs > options.maxBackfillAgeMs
  ) {
    return skip("backfill");
  }
  const text = messageText(row);
  if (!text) return skip("no-text");
  if (!route) return skip("no-chat");

  const sender = row.handle || (route.kind === "buddy" ? route.chatId : undefined);
  const message: InboundMessage = {
    channel: IMESSAGE_CHANNEL,
    chatId: route.chatId,
    text,
    receivedAt: new Date(sentMs ?? options.nowMs),
  };
  if (sender) message.sender = sender;
  if (route.kind === "chat" && row.chatDisplayName) message.groupName = row.chatDisplayName;
  if (row.guid) message.externalId = row.guid;
  return { kind: "message", rowId, message, route };
}

function isGroup(row: ChatDbRow): boolean {
  if (row.chatStyle === GROUP_STYLE) return true;
  if (row.chatStyle === ONE_TO_ONE_STYLE) return false;
  return row.chatGuid?.includes(";+;") ?? false;
}

/**
 * The words of a row with its files noted in place: `text`, else the decoded `attributedBody`;
 * each U+FFFC becomes `[attachment: name]`, and files without a placeholder are noted at the end.
 * Empty when there is nothing to say.
 */
export function messageText(row: ChatDbRow): string {
  const names = attachmentNames(row.attachmentNames);
  const raw =
    (row.text && row.text.length > 0 ? row.text : undefined) ??
    (row.attributedBody ? decodeAttributedBody(row.attributedBody) : undefined) ??
    "";
  const pieces = raw.split(ATTACHMENT_PLACEHOLDER);
  let text = pieces[0] ?? "";
  pieces.slice(1).forEach((piece, index) => {
    const name = names[index];
    text = joinWithSpace(joinWithSpace(text, name === undefined ? "" : noteFor(name)), piece);
  });
  for (const name of names.slice(pieces.length - 1)) text = joinWithSpace(text, noteFor(name));
  return text.trim();
}

/** `a` and `b` with one space between them unless either is empty or already spaced. */
function joinWithSpace(a: string, b: string): string {
  if (!a || !b || /\s$/.test(a) || /^\s/.test(b)) return a + b;
  return `${a} ${b}`;
}

const noteFor = (name: string) => `[attachment: ${name}]`;

function attachmentNames(json: string | null): string[] {
  if (!json) return [];
  try {
    const parsed: unknown = JSON.parse(json);
    if (!Array.isArray(parsed)) return [];
    return parsed.map((name) =>
      typeof name === "string" && name.trim() ? baseName(name.trim()) : "file",
    );
  } catch {
    return [];
  }
}

/** `~/Library/Messages/Attachments/ab/11/GUID/IMG_1.jpeg` -> `IMG_1.jpeg`. */
function baseName(name: string): string {
  const slash = name.lastIndexOf("/");
  return slash >= 0 && slash < name.length - 1 ? name.slice(slash + 1) : name;
}
