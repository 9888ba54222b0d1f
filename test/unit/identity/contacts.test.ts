import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DispatchError } from "../../../src/utils/errors.js";
import { DEFAULT_TIERS, asChatId } from "../../../src/utils/ids.js";
import { normaliseChatId } from "../../../src/identity/chat-id.js";
import {
  emptyContactBook,
  loadContacts,
  parseContacts,
  resolveSender,
  type ContactsOptions,
} from "../../../src/identity/contacts.js";

const options: ContactsOptions = { knownTiers: DEFAULT_TIERS, defaultRegion: "US" };

const EXAMPLE = {
  contacts: [
    { name: "John Doe", tier: "favorite", handles: ["+1 (555) 123-4567", "John@Example.com"] },
    { name: "Jane Roe", tier: "family", handles: ["555.987.6543"] },
  ],
  groups: [{ chat_id: "chat123456789", name: "Family Chat", tier: "family" }],
};

function parseError(json: unknown, parseOptions: ContactsOptions = options): DispatchError {
  try {
    parseContacts(json, parseOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(DispatchError);
    expect((error as DispatchError).code).toBe("contacts_invalid");
    return error as DispatchError;
  }
  throw new Error("expected the contacts to be rejected");
}

describe("parseContacts", () => {
  it("looks up contacts and groups by normalised chat id", () => {
    const book = parseContacts(EXAMPLE, options);
    expect(book.size).toBe(3);
    const john = { kind: "contact", name: "John Doe", tier: "favorite" };
    expect(book.lookup(normaliseChatId("+1 555 123 4567"))).toEqual(john);
    expect(book.lookup(normaliseChatId("tel:+15551234567"))).toEqual(john);
    expect(book.lookup(normaliseChatId("JOHN@example.com"))).toEqual(john);
    expect(book.lookup(asChatId("+15559876543"))).toEqual({
      kind: "contact",
      name: "Jane Roe",
      tier: "family",
    });
    expect(book.lookup(asChatId("chat123456789"))).toEqual({
      kind: "group",
      name: "Family Chat",
      tier: "family",
    });
    expect(book.lookup(asChatId("+15550000000"))).toBeUndefined();
    // The book expects normalised ids; a raw one does not match.
    expect(book.lookup(asChatId("+1 (555) 123-4567"))).toBeUndefined();
  });

  it("lists every entry with each raw handle and its chat id, in file order", () => {
    expect(parseContacts(EXAMPLE, options).entries()).toEqual([
      {
        kind: "contact",
        name: "John Doe",
        tier: "favorite",
        handles: [
          { raw: "+1 (555) 123-4567", chatId: "+15551234567" },
          { raw: "John@Example.com", chatId: "john@example.com" },
        ],
      },
      {
        kind: "contact",
        name: "Jane Roe",
        tier: "family",
        handles: [{ raw: "555.987.6543", chatId: "+15559876543" }],
      },
      {
        kind: "group",
        name: "Family Chat",
        tier: "family",
        handles: [{ raw: "chat123456789", chatId: "chat123456789" }],
      },
    ]);
  });

  it("accepts an empty object and lists with no entries", () => {
    expect(parseContacts({}, options).size).toBe(0);
    expect(parseContacts({ contacts: [], groups: [] }, options).entries()).toEqual([]);
  });

  it("allows the same handle twice in one contact", () => {
    const book = parseContacts(
      { contacts: [{ name: "A", tier: "admin", handles: ["+15551234567", "+1 555 123 4567"] }] },
      options,
    );
    expect(book.lookup(asChatId("+15551234567"))?.name).toBe("A");
  });

  it("names the JSON path, what was found and the fix for a wrong type", () => {
    const error = parseError({
      contacts: [...EXAMPLE.contacts, { name: "Bob", tier: "admin", handles: [42] }],
    });
    expect(error.message).toContain("contacts[2].handles[0]: expected a string, found 42");
    expect(error.message).toContain("dispatch contacts check");
  });

  it("rejects unknown keys, listing the allowed ones", () => {
    const error = parseError({
      contacts: [{ name: "A", tier: "admin", handles: ["+15551234567"], phone: "x" }],
      extra: true,
    });
    expect(error.message).toContain('contacts[0]: unknown key "phone"');
    expect(error.message).toContain("allowed keys are name, tier, handles");
    expect(error.message).toContain('the top level: unknown key "extra"');
    expect(error.message).toContain("allowed keys are contacts, groups");
  });

  it("reports missing fields, empty names and empty handle lists", () => {
    const error = parseError({
      contacts: [{ name: " ", tier: "admin", handles: [] }, { tier: "admin" }],
      groups: [{ name: "G", tier: "family" }],
    });
    expect(error.message).toContain('contacts[0].name: expected a non-empty string, found " "');
    expect(error.message).toContain("contacts[0].handles: empty");
    expect(error.message).toContain("contacts[1].name: missing");
    expect(error.message).toContain("contacts[1].handles: missing");
    expect(error.message).toContain("groups[0].chat_id: missing");
  });

  it("rejects a file that is not an object", () => {
    expect(parseError([]).message).toContain("the top level: expected an object");
    expect(parseError({ contacts: {} }).message).toContain("contacts: expected a list");
  });

  it("names a handle that does not normalise", () => {
    const error = parseError({
      contacts: [{ name: "A", tier: "admin", handles: ["+15551234567", "12"] }],
    });
    expect(error.message).toContain('contacts[0].handles[1]: Invalid chat id "12"');
  });

  it("asks for defaultRegion when a handle has no country code and none is set", () => {
    const error = parseError(EXAMPLE, { knownTiers: DEFAULT_TIERS });
    expect(error.message).toContain("contacts[1].handles[0]");
    expect(error.message).toContain("defaultRegion");
  });

  it("rejects a group id as a contact handle and a phone number as a group", () => {
    const error = parseError({
      contacts: [{ name: "A", tier: "admin", handles: ["johnny"] }],
      groups: [{ chat_id: "+15551234567", name: "G", tier: "family" }],
    });
    expect(error.message).toContain('contacts[0].handles[0]: "johnny" is not a phone number');
    expect(error.message).toContain('groups[0].chat_id: "+15551234567" is a phone number');
  });

  it("rejects one handle under two contacts, naming both", () => {
    const error = parseError({
      contacts: [
        { name: "John Doe", tier: "favorite", handles: ["+1 (555) 123-4567"] },
        { name: "Johnny", tier: "family", handles: ["john@example.com", "555-123-4567"] },
      ],
    });
    expect(error.message).toContain(
      'contacts[1].handles[1]: "555-123-4567" is the same chat (+15551234567) as ' +
        'contacts[0].handles[0], so "John Doe" and "Johnny" both claim it',
    );
  });

  it("rejects a repeated group chat id, naming both groups", () => {
    const error = parseError({
      groups: [
        { chat_id: "chat1", name: "Family Chat", tier: "family" },
        { chat_id: " chat1 ", name: "Cousins", tier: "family" },
      ],
    });
    expect(error.message).toContain("groups[1].chat_id");
    expect(error.message).toContain('"Family Chat" and "Cousins" both claim it');
  });

  it("rejects unknown tiers, listing the known ones", () => {
    const error = parseError({
      contacts: [{ name: "A", tier: "vip", handles: ["+15551234567"] }],
    });
    expect(error.message).toContain('contacts[0].tier: unknown tier "vip"');
    expect(error.message).toContain("admin, partner, family, favorite, bots, unknown");
    const custom = parseContacts(
      { contacts: [{ name: "A", tier: "vip", handles: ["+15551234567"] }] },
      { knownTiers: [...DEFAULT_TIERS, "vip"] },
    );
    expect(custom.lookup(asChatId("+15551234567"))?.tier).toBe("vip");
  });

  it("lists a malformed entry's problems together with the others' (bug: they came in stages, one restart each)", () => {
    const error = parseError({
      contacts: [
        { name: "Ann", tier: "nope", handles: ["+15551230001"] },
        { name: "Bob", tier: "family", handles: [42] },
        { name: "Cat", tier: "favorite", handles: ["not a handle at all"] },
      ],
      groups: [{ chat_id: "+15551230002", name: "G", tier: "family" }, { name: "H" }],
      extra: 1,
    });
    expect(error.message).toContain('the top level: unknown key "extra"');
    expect(error.message).toContain('contacts[0].tier: unknown tier "nope"');
    expect(error.message).toContain("contacts[1].handles[0]: expected a string, found 42");
    expect(error.message).toContain("contacts[2].handles[0]:");
    expect(error.message).toContain("groups[0].chat_id:");
    expect(error.message).toContain("groups[1].chat_id: missing");
    expect(error.message).toContain("groups[1].tier: missing");
  });

  it("reports every problem at once, up to a limit", () => {
    const contacts = Array.from({ length: 25 }, (_, index) => ({
      name: `C${index}`,
      tier: "nope",
      handles: [`+1555000${String(index).padStart(4, "0")}`],
    }));
    const error = parseError({ contacts });
    expect(error.message).toContain("contacts[0].tier");
    expect(error.message).toContain("contacts[19].tier");
    expect(error.message).not.toContain("contacts[20].tier");
    expect(error.message).toContain("and 5 more");
  });
});

describe("loadContacts", () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "dispatch-contacts-"));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("treats a missing file as an empty book", async () => {
    const book = await loadContacts(join(directory, "missing.json"), options);
    expect(book.size).toBe(0);
    expect(book.entries()).toEqual([]);
  });

  it("reads a valid file, byte order mark and all", async () => {
    const path = join(directory, "valid.json");
    await writeFile(path, `\uFEFF${JSON.stringify(EXAMPLE, null, 2)}`);
    const book = await loadContacts(path, options);
    expect(book.size).toBe(3);
    expect(book.lookup(asChatId("john@example.com"))?.name).toBe("John Doe");
  });

  it("names the file when the JSON does not parse", async () => {
    const path = join(directory, "broken.json");
    await writeFile(path, '{ "contacts": [ }');
    const error = await loadContacts(path, options).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DispatchError);
    expect((error as DispatchError).code).toBe("contacts_invalid");
    expect((error as DispatchError).message).toContain(`Contacts file ${path} is not valid JSON`);
  });

  it("gives the line and column of a syntax error, as config.json errors do (bug: V8 names no position for an unexpected token)", async () => {
    const path = join(directory, "unexpected-token.json");
    await writeFile(path, '{\n  "contacts": [\n    { "name": "A", "tier": tru }\n  ]\n}\n');
    const error = await loadContacts(path, options).catch((caught: unknown) => caught);
    expect((error as DispatchError).message).toContain("(line 3, column 28)");
    const trailing = join(directory, "trailing-comma.json");
    await writeFile(trailing, '\uFEFF{\n  "contacts": [],\n}\n');
    const second = await loadContacts(trailing, options).catch((caught: unknown) => caught);
    expect((second as DispatchError).message).toContain("(line 3, column 1)");
  });

  it("names the file and the JSON path for a schema error", async () => {
    const path = join(directory, "schema.json");
    await writeFile(path, JSON.stringify({ contacts: [{ name: "A", tier: 1, handles: [] }] }));
    const error = await loadContacts(path, options).catch((caught: unknown) => caught);
    expect((error as DispatchError).code).toBe("contacts_invalid");
    expect((error as DispatchError).message).toContain(`Contacts file ${path} is invalid`);
    expect((error as DispatchError).message).toContain("contacts[0].tier: expected a string");
  });

  it("reports a path that cannot be read", async () => {
    const path = join(directory, "a-directory");
    await mkdir(path);
    const error = await loadContacts(path, options).catch((caught: unknown) => caught);
    expect((error as DispatchError).code).toBe("contacts_invalid");
    expect((error as DispatchError).message).toContain(`Contacts file ${path} cannot be read`);
  });
});

describe("resolveSender", () => {
  const book = parseContacts(EXAMPLE, options);

  it("answers known senders with their name and tier", () => {
    expect(resolveSender(book, asChatId("+15551234567"), "ignore")).toEqual({
      name: "John Doe",
      tier: "favorite",
      answered: true,
    });
    expect(resolveSender(book, asChatId("chat123456789"), "ignore")).toEqual({
      name: "Family Chat",
      tier: "family",
      answered: true,
    });
  });

  it("gives unknown senders the unknown tier and follows the policy", () => {
    const stranger = asChatId("+15550001111");
    expect(resolveSender(book, stranger, "ignore")).toEqual({
      name: null,
      tier: "unknown",
      answered: false,
    });
    expect(resolveSender(book, stranger, "respond")).toEqual({
      name: null,
      tier: "unknown",
      answered: true,
    });
    expect(resolveSender(emptyContactBook(), stranger, "respond").tier).toBe("unknown");
  });
});
