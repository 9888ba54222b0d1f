import { describe, expect, it } from "vitest";
import {
  JOINED_PERSON,
  joinedEntry,
  mergePersonSessions,
  personSessionOf,
  sessionWideRegistry,
} from "../../../src/core/person-sessions.js";
import { parseContacts } from "../../../src/identity/contacts.js";
import { handlesOfPerson, peopleOf } from "../../../src/identity/person-handles.js";
import { createMemoryRegistry } from "../../../src/store/memory-registry.js";
import type { RegistryEntry } from "../../../src/store/registry.js";
import { asAgentSessionId, asChatId, type AgentSessionId } from "../../../src/utils/ids.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { makeEntry } from "../../support/registry-entry.js";

const PHONE = asChatId("+15551234567");
const EMAIL = asChatId("john@example.com");
const WORK = asChatId("john@work.example.com");
const JANE = asChatId("+15559876543");
const FAMILY = asChatId("chat123456789");
const PHONE_SESSION = asAgentSessionId("11111111-1111-4111-8111-111111111111");
const EMAIL_SESSION = asAgentSessionId("22222222-2222-4222-8222-222222222222");
const JANE_SESSION = asAgentSessionId("33333333-3333-4333-8333-333333333333");
const NOW = new Date("2026-03-01T12:00:00.000Z");

function entry(
  name: string,
  sessionId: AgentSessionId | null,
  lastMessageTime: string | null,
  overrides: Partial<RegistryEntry> = {},
): RegistryEntry {
  return makeEntry(name, {
    session_id: sessionId,
    last_message_time: lastMessageTime,
    channel: "imessage",
    turns: 3,
    ...overrides,
  });
}

describe("personSessionOf", () => {
  it("picks the most recently active of a person's chats that has a session id", () => {
    const entries = new Map([
      [PHONE, entry("john-doe", PHONE_SESSION, "2026-02-10T10:00:00.000Z")],
      [EMAIL, entry("john-doe-2", EMAIL_SESSION, "2026-02-20T10:00:00.000Z")],
      [WORK, entry("john-doe-3", null, "2026-02-25T10:00:00.000Z")],
    ]);
    const get = (chatId: ReturnType<typeof asChatId>) => entries.get(chatId);
    expect(personSessionOf([PHONE, EMAIL, WORK], get)?.chatId).toBe(EMAIL);
    // Leaving a chat out: the session of the others.
    expect(personSessionOf([PHONE, EMAIL, WORK], get, EMAIL)?.chatId).toBe(PHONE);
    expect(personSessionOf([WORK], get)).toBeUndefined();
  });
});

describe("joinedEntry", () => {
  it("takes the person's name and session id and keeps its own session findable", () => {
    const own = entry("john-doe-2", EMAIL_SESSION, "2026-02-20T10:00:00.000Z");
    const person = entry("john-doe", PHONE_SESSION, "2026-02-10T10:00:00.000Z");
    const joined = joinedEntry(own, person, NOW);
    expect(joined.session_name).toBe("john-doe");
    expect(joined.session_id).toBe(PHONE_SESSION);
    expect(joined.previous_session_ids).toEqual([
      {
        session_id: EMAIL_SESSION,
        replaced_at: NOW.toISOString(),
        reason: JOINED_PERSON,
        session_name: "john-doe-2",
      },
    ]);
    // Its own bookkeeping stays its own.
    expect(joined.last_message_time).toBe(own.last_message_time);
    expect(joined.channel).toBe(own.channel);
  });
});

describe("mergePersonSessions (the start-up migration)", () => {
  it("puts a person's chats in the session of the most recently active one, losing no session", () => {
    const registry = createMemoryRegistry();
    registry.set(PHONE, entry("john-doe", PHONE_SESSION, "2026-02-10T10:00:00.000Z"));
    registry.set(EMAIL, entry("john-doe-2", EMAIL_SESSION, "2026-02-20T10:00:00.000Z"));
    registry.set(JANE, entry("jane", JANE_SESSION, null, { contact_name: "Jane" }));
    registry.set(
      FAMILY,
      entry("family", asAgentSessionId("44444444-4444-4444-8444-444444444444"), null, {
        chat_kind: "group",
      }),
    );
    const logger = createMemoryLogger();

    const joined = mergePersonSessions(registry, [[PHONE, EMAIL, WORK], [JANE]], NOW, logger);

    expect(joined).toEqual([PHONE]);
    // The email chat wrote last: its session is the person's; the phone's is kept in its history.
    expect(registry.get(PHONE)).toMatchObject({
      session_name: "john-doe-2",
      session_id: EMAIL_SESSION,
    });
    expect(registry.get(PHONE)?.previous_session_ids).toEqual([
      {
        session_id: PHONE_SESSION,
        replaced_at: NOW.toISOString(),
        reason: JOINED_PERSON,
        session_name: "john-doe",
      },
    ]);
    expect(registry.get(EMAIL)?.previous_session_ids).toEqual([]);
    expect(registry.chatsNamed("john-doe-2").sort()).toEqual([EMAIL, PHONE].sort());
    // Others untouched: a person alone in a session, and a group.
    expect(registry.get(JANE)?.session_name).toBe("jane");
    expect(registry.get(FAMILY)?.session_name).toBe("family");
    expect(
      logger.records.find((record) => record.message === "session-join")?.fields,
    ).toMatchObject({ chatId: PHONE, sessionName: "john-doe-2", left: "john-doe" });
    // Run again (the next start): nothing more to merge.
    expect(mergePersonSessions(registry, [[PHONE, EMAIL, WORK]], NOW, logger)).toEqual([]);
  });
});

describe("sessionWideRegistry", () => {
  it("writes a new session id and a new previous session to every chat of the session", () => {
    const registry = createMemoryRegistry();
    registry.set(EMAIL, entry("john-doe", EMAIL_SESSION, null));
    registry.set(
      PHONE,
      joinedEntry(entry("john-doe-2", PHONE_SESSION, null), registry.get(EMAIL)!, NOW),
    );
    registry.set(JANE, entry("jane", JANE_SESSION, null));
    const view = sessionWideRegistry(registry);
    const fresh = asAgentSessionId("55555555-5555-4555-8555-555555555555");
    const replaced = {
      session_id: EMAIL_SESSION,
      replaced_at: NOW.toISOString(),
      reason: "restart",
    };

    view.update(EMAIL, { session_id: fresh, previous_session_ids: [replaced], turns: 9 });

    expect(registry.get(PHONE)?.session_id).toBe(fresh);
    // The phone keeps the record of its own join, and gets the session's new one.
    expect(registry.get(PHONE)?.previous_session_ids.map((item) => item.reason)).toEqual([
      JOINED_PERSON,
      "restart",
    ]);
    expect(registry.get(EMAIL)?.previous_session_ids).toEqual([replaced]);
    // Bookkeeping stays the chat's own; another session is not touched.
    expect(registry.get(PHONE)?.turns).toBe(3);
    expect(registry.get(JANE)?.session_id).toBe(JANE_SESSION);
  });
});

describe("handlesOfPerson", () => {
  it("gives a handle's contact's chat ids, and nothing for groups and strangers", () => {
    const book = parseContacts(
      {
        contacts: [
          {
            name: "John Doe",
            tier: "favorite",
            handles: ["+1 (555) 123-4567", "John@Example.com"],
          },
        ],
        groups: [{ chat_id: "chat123456789", name: "Family", tier: "family" }],
      },
      { knownTiers: ["favorite", "family"] },
    );
    expect(handlesOfPerson(book, EMAIL)).toEqual([PHONE, EMAIL]);
    expect(handlesOfPerson(book, PHONE)).toEqual([PHONE, EMAIL]);
    expect(handlesOfPerson(book, FAMILY)).toBeUndefined();
    expect(handlesOfPerson(book, JANE)).toBeUndefined();
    expect(peopleOf(book)).toEqual([[PHONE, EMAIL]]);
  });
});
