/**
 * The contacts book (`~/dispatch/contacts.json`): who a chat id belongs to and which tier it is
 * in. Parsing is pure; `loadContacts` only adds reading the file. Every problem is reported at
 * once, each naming the JSON path, what was found and the fix, because a person edits this file
 * by hand and should not have to fix it one error per restart.
 */
import { readFile } from "node:fs/promises";
import { jsonErrorLocation } from "../config/load-config.js";
import { DispatchError, describeError } from "../utils/errors.js";
import type { ChatId } from "../utils/ids.js";
import { chatKind, normaliseChatId, type CountryCode } from "./chat-id.js";
import { checkContactsFile } from "./contacts-file.js";

export interface ContactsOptions {
  defaultRegion?: CountryCode;
  /** Tier names config knows; any other tier in the file is an error. */
  knownTiers: readonly string[];
  /** How messages name the input; `loadContacts` passes the file's path. */
  source?: string;
}

export interface ContactMatch {
  kind: "contact" | "group";
  name: string;
  tier: string;
}

/** One contact or group as written in the file, with each handle's normalised chat id. */
export interface ContactBookEntry extends ContactMatch {
  /** A contact's handles, or a group's single `chat_id`. */
  handles: readonly { raw: string; chatId: ChatId }[];
}

export interface ContactBook {
  /** Contacts plus groups. */
  readonly size: number;
  lookup(chatId: ChatId): ContactMatch | undefined;
  /** In file order, contacts first; for `dispatch contacts check`. */
  entries(): readonly ContactBookEntry[];
}

export interface ResolvedSender {
  name: string | null;
  tier: string;
  /** False only for unknown senders under `unknownSenders: "ignore"`; tiers decide the rest. */
  answered: boolean;
}

const MAX_PROBLEMS_SHOWN = 20;

/** Which entry first claimed a chat id, to name both sides of a duplicate. */
interface Claim {
  path: string;
  match: ContactMatch;
}

/** Validates parsed JSON into a `ContactBook`; throws `contacts_invalid` listing every problem. */
export function parseContacts(json: unknown, options: ContactsOptions): ContactBook {
  const checked = checkContactsFile(json);
  // Malformed entries are reported together with the problems of the well-formed ones.
  const problems: string[] = [...checked.problems];
  const claims = new Map<ChatId, Claim>();

  function addEntry(
    match: ContactMatch,
    rawHandles: readonly { raw: string; path: string }[],
    path: string,
  ): ContactBookEntry {
    if (!options.knownTiers.includes(match.tier)) {
      problems.push(
        `${path}.tier: unknown tier ${JSON.stringify(match.tier)}. Use one of ` +
          `${options.knownTiers.join(", ")}, or define it under \`tiers\` in config.json.`,
      );
    }
    const frozenMatch = Object.freeze(match);
    const handles: { raw: string; chatId: ChatId }[] = [];
    for (const { raw, path: handlePath } of rawHandles) {
      const chatId = toChatId(raw, handlePath, match.kind, options, problems);
      if (chatId === undefined) continue;
      handles.push({ raw, chatId });
      const claim = claims.get(chatId);
      if (claim === undefined) {
        claims.set(chatId, { path: handlePath, match: frozenMatch });
      } else if (claim.match !== frozenMatch) {
        // The same handle twice in one contact is harmless; across two it makes lookup ambiguous.
        problems.push(
          `${handlePath}: ${JSON.stringify(raw)} is the same chat (${chatId}) as ${claim.path}, ` +
            `so ${JSON.stringify(claim.match.name)} and ${JSON.stringify(match.name)} both ` +
            "claim it. A chat belongs to one entry: remove it from one of them.",
        );
      }
    }
    return Object.freeze({ ...frozenMatch, handles: Object.freeze(handles) });
  }

  const entries = [
    ...checked.contacts.map(({ index, entry: contact }) =>
      addEntry(
        { kind: "contact", name: contact.name, tier: contact.tier },
        contact.handles.map((raw, handleIndex) => ({
          raw,
          path: `contacts[${index}].handles[${handleIndex}]`,
        })),
        `contacts[${index}]`,
      ),
    ),
    ...checked.groups.map(({ index, entry: group }) =>
      addEntry(
        { kind: "group", name: group.name, tier: group.tier },
        [{ raw: group.chat_id, path: `groups[${index}].chat_id` }],
        `groups[${index}]`,
      ),
    ),
  ];
  if (problems.length > 0) fail(options, problems);
  return createContactBook(entries, claims);
}

/**
 * Reads and parses the contacts file. A missing file is an empty book (contacts are optional);
 * anything else wrong throws `contacts_invalid` naming the file.
 */
export async function loadContacts(path: string, options: ContactsOptions): Promise<ContactBook> {
  const source = options.source ?? `Contacts file ${path}`;
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return emptyContactBook();
    throw new DispatchError(
      "contacts_invalid",
      `${source} cannot be read: ${describeError(error)}. Check that it is a file you can read.`,
      { cause: error },
    );
  }
  // Editors on some systems save a byte order mark, which JSON.parse rejects.
  const withoutBom = text.replace(/^\uFEFF/, "");
  let json: unknown;
  try {
    json = JSON.parse(withoutBom);
  } catch (error) {
    const reason = describeError(error);
    throw new DispatchError(
      "contacts_invalid",
      `${source} is not valid JSON: ${reason}${jsonErrorLocation(withoutBom, reason)}. Fix the ` +
        "syntax there (a missing comma or quote, or a trailing comma); JSON allows no comments.",
      { cause: error },
    );
  }
  return parseContacts(json, { ...options, source });
}

export function emptyContactBook(): ContactBook {
  return createContactBook([], new Map());
}

/** Who a chat is, by the contacts book and the `unknownSenders` policy. */
export function resolveSender(
  book: ContactBook,
  chatId: ChatId,
  unknownSenders: "ignore" | "respond",
): ResolvedSender {
  const match = book.lookup(chatId);
  if (match !== undefined) return { name: match.name, tier: match.tier, answered: true };
  return { name: null, tier: "unknown", answered: unknownSenders === "respond" };
}

function createContactBook(
  entries: readonly ContactBookEntry[],
  claims: ReadonlyMap<ChatId, Claim>,
): ContactBook {
  const byChatId = new Map(Array.from(claims, ([chatId, claim]) => [chatId, claim.match]));
  const frozenEntries = Object.freeze([...entries]);
  return {
    size: entries.length,
    lookup: (chatId) => byChatId.get(chatId),
    entries: () => frozenEntries,
  };
}

/** Normalises one handle, recording a problem instead of throwing so all are reported. */
function toChatId(
  raw: string,
  path: string,
  kind: ContactMatch["kind"],
  options: ContactsOptions,
  problems: string[],
): ChatId | undefined {
  let chatId: ChatId;
  try {
    chatId = normaliseChatId(raw, { defaultRegion: options.defaultRegion });
  } catch (error) {
    problems.push(`${path}: ${describeError(error)}`);
    return undefined;
  }
  if (kind === "contact" && chatKind(chatId) === "group") {
    problems.push(
      `${path}: ${JSON.stringify(raw)} is not a phone number or email address. ` +
        'Write the number with its country code (+15551234567); group chats go under "groups".',
    );
    return undefined;
  }
  if (kind === "group" && chatKind(chatId) === "individual") {
    problems.push(
      `${path}: ${JSON.stringify(raw)} is a phone number or email address, not a group chat id. ` +
        'Put it in the "handles" of an entry under "contacts".',
    );
    return undefined;
  }
  return chatId;
}

function fail(options: ContactsOptions, problems: readonly string[]): never {
  const shown = problems.slice(0, MAX_PROBLEMS_SHOWN).map((problem) => `  - ${problem}`);
  if (problems.length > MAX_PROBLEMS_SHOWN) {
    shown.push(`  - and ${problems.length - MAX_PROBLEMS_SHOWN} more`);
  }
  throw new DispatchError(
    "contacts_invalid",
    `${options.source ?? "The contacts book"} is invalid:\n${shown.join("\n")}\n` +
      "Fix these, then run `dispatch contacts check`.",
  );
}
