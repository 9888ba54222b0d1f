/**
 * Chat id normalisation: every channel and the contacts book write the same person the same way,
 * so one person gets one session however their number was typed.
 *
 * - phone numbers become E.164 (`+15551234567`);
 * - email addresses are trimmed and lower-cased;
 * - Signal's own ids, `signal:<uuid>` (an individual) and `signal-group:<id>` (`signal-address.ts`);
 * - anything else is a group chat id, kept exactly as given apart from surrounding whitespace.
 */
import { parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js";
import { DispatchError } from "../utils/errors.js";
import { asChatId, type ChatId } from "../utils/ids.js";
import { isSignalAccountChatId, normaliseSignalId } from "./signal-address.js";

export type { CountryCode } from "libphonenumber-js";

export interface NormaliseChatIdOptions {
  /** Region for numbers written without a country code (`"US"`); `defaultRegion` in config. */
  defaultRegion?: CountryCode;
}

export type ChatKind = "individual" | "group";

/** Long enough for any real handle or group id; short enough to bound the work per message. */
export const MAX_CHAT_ID_LENGTH = 256;

const VALID_SHAPES =
  "A chat id is a phone number with its country code (+15551234567), an email address " +
  "(john@example.com), or a group chat id (chat123456789).";

const LONE_SURROGATE = /\p{Cs}/u;
// Control characters and the two Unicode line breaks: they corrupt logs, JSON lines and paths.
const CONTROL_CHARACTER = /[\p{Cc}\u2028\u2029]/u;
// Invisible formatting (bidi marks, zero-width spaces): contacts apps add them around copied
// numbers, and two visually identical ids must not become two different chats.
const FORMAT_CHARACTER = /\p{Cf}/u;
const FORMAT_CHARACTERS = /\p{Cf}/gu;
const DECIMAL_DIGIT = /\p{Nd}/gu;
const DASH = /\p{Pd}/gu;
// What people put between the digits of a phone number, after the rewrites above.
const PHONE_CHARACTERS = /^[0-9+\-\s()./]+$/;
const TEL_PREFIX = /^tel:/i;
const MAILTO_PREFIX = /^mailto:/i;
const EMAIL = /^[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)+$/u;

/**
 * Ids normalised lately, by region and raw text. Every message is normalised two or three times
 * on its way in, and parsing a phone number was ~6% of the daemon's CPU per warm turn; the same
 * few handles write over and over. Bounded: the oldest entry goes first.
 */
const recentlyNormalised = new Map<string, ChatId>();
const RECENT_LIMIT = 1_000;

/**
 * Turns a raw handle or group id from a channel, the HTTP API or contacts.json into the one
 * canonical `ChatId`. Throws `DispatchError` with code `invalid_chat_id` saying what is wrong.
 */
export function normaliseChatId(raw: string, options: NormaliseChatIdOptions = {}): ChatId {
  if (typeof raw !== "string") throw invalid(String(raw), "it is not a string");
  const key = `${options.defaultRegion ?? ""}\u0000${raw}`;
  const known = recentlyNormalised.get(key);
  if (known !== undefined) return known;
  const chatId = normalise(raw, options);
  if (recentlyNormalised.size >= RECENT_LIMIT) {
    recentlyNormalised.delete(recentlyNormalised.keys().next().value!);
  }
  recentlyNormalised.set(key, chatId);
  return chatId;
}

function normalise(raw: string, options: NormaliseChatIdOptions): ChatId {
  if (LONE_SURROGATE.test(raw)) throw invalid(raw, "it is not valid Unicode (a lone surrogate)");
  const trimmed = raw.trim();
  if (trimmed === "") throw invalid(raw, "it is empty");
  if (trimmed.length > MAX_CHAT_ID_LENGTH) {
    throw invalid(raw, `it is longer than ${MAX_CHAT_ID_LENGTH} characters`);
  }
  if (CONTROL_CHARACTER.test(trimmed)) throw invalid(raw, "it contains a control character");
  if (trimmed === "." || trimmed === "..") throw invalid(raw, "it is a directory name");

  const signal = normaliseSignalId(raw, trimmed);
  if (signal !== undefined) return signal;
  // "@" first: an email may start with "+" or hold only digits before the "@".
  if (trimmed.includes("@")) return normaliseEmail(raw, trimmed);
  const phoneCandidate = toPhoneCandidate(trimmed);
  if (phoneCandidate !== undefined) return normalisePhone(raw, phoneCandidate, options);
  return normaliseGroupId(raw, trimmed);
}

/**
 * Individuals are E.164 numbers, emails and Signal account ids; everything else
 * `normaliseChatId` accepted is a group. Only meaningful for ids that came out of it.
 */
export function chatKind(chatId: ChatId): ChatKind {
  return chatId.startsWith("+") || chatId.includes("@") || isSignalAccountChatId(chatId)
    ? "individual"
    : "group";
}

/**
 * Decides whether the input is an attempt at a phone number, returning it rewritten to ASCII
 * digits and punctuation, or `undefined` when it is not one. Anything that starts with "+" or
 * "tel:", or holds only digits and phone punctuation, counts: "12" must be an error, not a group
 * that silently never matches the contact.
 */
function toPhoneCandidate(trimmed: string): string | undefined {
  const rewritten = toAsciiDigits(trimmed.normalize("NFKC"))
    .replace(FORMAT_CHARACTERS, "")
    .replace(DASH, "-")
    .trim();
  if (TEL_PREFIX.test(rewritten)) return rewritten.replace(TEL_PREFIX, "").trim();
  if (rewritten.startsWith("+")) return rewritten;
  if (PHONE_CHARACTERS.test(rewritten)) return rewritten;
  return undefined;
}

function normalisePhone(raw: string, candidate: string, options: NormaliseChatIdOptions): ChatId {
  if (!PHONE_CHARACTERS.test(candidate)) {
    throw invalid(
      raw,
      "it starts like a phone number but holds something other than digits and " +
        "phone punctuation (extensions and letters cannot receive texts)",
    );
  }
  if (!/[0-9]/.test(candidate)) throw invalid(raw, "it is phone punctuation without digits");
  if (candidate.lastIndexOf("+") > 0) throw invalid(raw, `"+" may only come first`);
  // "00" is the international prefix in most of the world; the library only knows it when the
  // default region uses it, so "00 44 ..." would otherwise depend on `defaultRegion`.
  const international = candidate.replace(/^00(?=[1-9\s(.-])/, "+");
  if (!international.startsWith("+") && options.defaultRegion === undefined) {
    throw invalid(
      raw,
      "it is a phone number without a country code and no `defaultRegion` is configured; " +
        'write it with "+" and the country code, or set `defaultRegion` (e.g. "US") in config.json',
    );
  }
  const parsed = parsePhoneNumberFromString(international, options.defaultRegion);
  // isPossible, not isValid: the 555 fiction range and brand-new number blocks are real enough
  // to text, and rejecting them would drop messages on a metadata update.
  if (parsed === undefined || !parsed.isPossible()) {
    throw invalid(raw, "it is not a possible phone number (wrong number of digits)");
  }
  return asChatId(parsed.number);
}

function normaliseEmail(raw: string, trimmed: string): ChatId {
  const address = trimmed.replace(MAILTO_PREFIX, "");
  if (/\s/u.test(address)) throw invalid(raw, "it looks like an email address but has spaces");
  if (FORMAT_CHARACTER.test(address)) {
    throw invalid(raw, "it looks like an email address but has invisible formatting characters");
  }
  if (!EMAIL.test(address)) {
    throw invalid(raw, "it has an @ but is not an email address like john@example.com");
  }
  return asChatId(address.toLowerCase());
}

function normaliseGroupId(raw: string, trimmed: string): ChatId {
  // Group ids reach file names and URLs in places; a separator there is never legitimate.
  if (trimmed.includes("/") || trimmed.includes("\\")) {
    throw invalid(raw, 'a group chat id may not contain "/" or "\\"');
  }
  if (FORMAT_CHARACTER.test(trimmed)) {
    throw invalid(raw, "it contains invisible formatting characters");
  }
  return asChatId(trimmed);
}

/**
 * Maps every Unicode decimal digit (Arabic-Indic, Devanagari, ...) to ASCII. Unicode guarantees
 * each such digit sits in a contiguous run of ten from zero to nine (runs may touch), so the
 * distance to the start of the digits around it, modulo ten, is its value.
 */
function toAsciiDigits(text: string): string {
  return text.replace(DECIMAL_DIGIT, (digit) => {
    if (digit >= "0" && digit <= "9") return digit;
    let codePoint = digit.codePointAt(0) ?? 0;
    let offset = 0;
    while (/\p{Nd}/u.test(String.fromCodePoint(codePoint - 1))) {
      codePoint -= 1;
      offset += 1;
    }
    return String(offset % 10);
  });
}

function invalid(raw: string, reason: string): DispatchError {
  const shown = raw.length > 80 ? `${raw.slice(0, 80)}...` : raw;
  return new DispatchError(
    "invalid_chat_id",
    `Invalid chat id ${JSON.stringify(shown)}: ${reason}. ${VALID_SHAPES}`,
  );
}
