import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { TierConfig } from "../../../src/config/schema.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { asChatId } from "../../../src/utils/ids.js";
import { createContactsHolder } from "../../../src/daemon/contacts-holder.js";
import { createDaemonContacts } from "../../../src/dashboard/daemon-contacts.js";
import type { DashboardContacts } from "../../../src/dashboard/dashboard-contacts.js";
import { emptyContactBook, loadContacts } from "../../../src/identity/contacts.js";
import { createMemoryLogger } from "../../support/memory-logger.js";

const JOHN = "+15551234567";
const JANE = "+15559876543";
const STRANGER = "+15550001111";

const tier = (respond: boolean): TierConfig => ({
  respond,
  allowedTools: [],
  disallowedTools: [],
  permissionMode: "default",
});
const config = { tiers: { favorite: tier(true), family: tier(true), unknown: tier(false) } };

let folder: string;
let file: string;
let holder: ReturnType<typeof createContactsHolder>;
let logger: ReturnType<typeof createMemoryLogger>;
let contacts: DashboardContacts;
let sessions: {
  chat_id: string;
  session_name: string;
  contact_name: string | null;
  tier: string;
  state: string;
}[];

beforeEach(async () => {
  folder = await mkdtemp(path.join(os.tmpdir(), "dispatch-contacts-"));
  file = path.join(folder, "contacts.json");
  holder = createContactsHolder(emptyContactBook());
  logger = createMemoryLogger();
  sessions = [];
  contacts = createDaemonContacts({
    path: file,
    config,
    listSessions: () => sessions,
    apply: (book) => holder.replace(book),
    logger,
  });
});
afterEach(async () => {
  await rm(folder, { recursive: true, force: true });
});

async function rejection(work: Promise<unknown>): Promise<DispatchError> {
  const error = await work.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(DispatchError);
  return error as DispatchError;
}

const john = {
  name: "John Doe",
  tier: "favorite",
  handles: ["+1 (555) 123-4567", "john@example.com"],
};

describe("the daemon's contacts for the dashboard", () => {
  it("lists each contact's handles as chat ids with their sessions, and the chats no one claims", async () => {
    await writeFile(
      file,
      JSON.stringify({
        contacts: [{ name: "John Doe", tier: "favorite", handles: ["+1 (555) 123-4567", "nope"] }],
        groups: [{ chat_id: "chat123456789", name: "Family", tier: "family" }],
      }),
    );
    sessions = [
      {
        chat_id: JOHN,
        session_name: "john-doe",
        contact_name: "John Doe",
        tier: "favorite",
        state: "idle",
      },
      {
        chat_id: STRANGER,
        session_name: "stranger",
        contact_name: null,
        tier: "unknown",
        state: "stopped",
      },
    ];
    const view = await contacts.list();
    expect(view).toMatchObject({
      file,
      version: expect.any(String) as string,
      tiers: [
        { name: "favorite", answered: true },
        { name: "family", answered: true },
        { name: "unknown", answered: false },
      ],
      groups: [{ index: 0, name: "Family", handle: { chat_id: "chat123456789", session: null } }],
      unlisted: [{ chat_id: STRANGER, session_name: "stranger" }],
    });
    const [handle, bad] = view.contacts[0]!.handles;
    expect(handle).toEqual({
      raw: "+1 (555) 123-4567",
      chat_id: JOHN,
      problem: null,
      session: {
        chat_id: JOHN,
        session_name: "john-doe",
        contact_name: "John Doe",
        tier: "favorite",
        state: "idle",
      },
    });
    expect(bad).toMatchObject({ raw: "nope", chat_id: null, session: null });
    expect(bad!.problem).toContain("Not a phone number or email address");
    // The daemon would refuse this file at start: the view says why, and it can still be edited.
    expect(view.editable).toBe(true);
    expect(view.problems).toEqual([expect.stringContaining("contacts[0].handles[1]")]);
  });

  it("adds a contact to a home without contacts.json: writes it whole, private, and applies it", async () => {
    const before = await contacts.list();
    expect(before.version).toBeNull();
    const after = await contacts.add(john, before.version);
    expect(after.contacts).toEqual([
      expect.objectContaining({ index: 0, name: "John Doe", tier: "favorite" }),
    ]);
    // The file is what the daemon loads at start, and it is what the daemon uses now.
    const loaded = await loadContacts(file, { knownTiers: Object.keys(config.tiers) });
    expect(loaded.lookup(asChatId(JOHN))).toMatchObject({ name: "John Doe", tier: "favorite" });
    expect(holder.lookup(asChatId(JOHN))).toMatchObject({ name: "John Doe", tier: "favorite" });
    expect(holder.lookup(asChatId("john@example.com"))).toMatchObject({ name: "John Doe" });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ contacts: [john], groups: [] });
    expect(logger.records).toContainEqual(
      expect.objectContaining({
        message: "contacts-update",
        fields: expect.objectContaining({ change: "add", contacts: 1 }) as unknown,
      }),
    );
  });

  it("edits and removes a contact, keeping the groups and the other contacts in their order", async () => {
    const group = { chat_id: "chat123456789", name: "Family", tier: "family" };
    const jane = { name: "Jane Roe", tier: "family", handles: [JANE] };
    await writeFile(file, JSON.stringify({ contacts: [john, jane], groups: [group] }));
    let view = await contacts.list();
    view = await contacts.update(0, { ...john, tier: "family", handles: [JOHN] }, view.version);
    expect(view.contacts.map((contact) => [contact.name, contact.tier])).toEqual([
      ["John Doe", "family"],
      ["Jane Roe", "family"],
    ]);
    expect(holder.lookup(asChatId(JOHN))?.tier).toBe("family");
    expect(holder.lookup(asChatId("john@example.com"))).toBeUndefined();

    await contacts.remove(0, view.version);
    expect(JSON.parse(await readFile(file, "utf8"))).toEqual({ contacts: [jane], groups: [group] });
    expect(holder.lookup(asChatId(JOHN))).toBeUndefined();
    expect(holder.lookup(asChatId(JANE))?.name).toBe("Jane Roe");
    expect(holder.lookup(asChatId("chat123456789"))?.name).toBe("Family");
  });

  it("refuses a contact the daemon would refuse at start, saying why, and changes nothing", async () => {
    await writeFile(file, JSON.stringify({ contacts: [john] }));
    const text = await readFile(file, "utf8");
    const { version } = await contacts.list();
    const cases = [
      {
        contact: { name: "X", tier: "favorite", handles: ["not a handle"] },
        says: "contacts[1].handles[0]",
      },
      { contact: { name: "X", tier: "vip", handles: [JANE] }, says: 'unknown tier "vip"' },
      { contact: { name: " ", tier: "favorite", handles: [JANE] }, says: "contacts[1].name" },
      {
        contact: { name: "X", tier: "favorite", handles: [" "] },
        says: "contacts[1].handles: empty",
      },
      // Another contact's number, written another way: one chat cannot belong to two.
      {
        contact: { name: "X", tier: "favorite", handles: ["+1 555 123 4567"] },
        says: "both claim it",
      },
    ];
    for (const { contact, says } of cases) {
      const error = await rejection(contacts.add(contact, version));
      expect(error.code, says).toBe("contacts_invalid");
      expect(error.message, says).toContain(says);
    }
    expect(await readFile(file, "utf8")).toBe(text);
    expect(holder.size).toBe(0);
  });

  it("refuses a change made to an old copy: a hand edit in between is kept", async () => {
    await writeFile(file, JSON.stringify({ contacts: [john] }));
    const { version } = await contacts.list();
    const edited = JSON.stringify({ contacts: [{ ...john, name: "Johnny" }] });
    await writeFile(file, edited);
    const error = await rejection(
      contacts.add({ name: "Jane", tier: "family", handles: [JANE] }, version),
    );
    expect(error.code).toBe("contacts_changed");
    expect(await readFile(file, "utf8")).toBe(edited);
  });

  it("runs two changes from the same version one after the other: the second is refused", async () => {
    const { version } = await contacts.list();
    const results = await Promise.allSettled([
      contacts.add(john, version),
      contacts.add({ name: "Jane Roe", tier: "family", handles: [JANE] }, version),
    ]);
    expect(results[0].status).toBe("fulfilled");
    expect(results[1]).toMatchObject({ status: "rejected", reason: { code: "contacts_changed" } });
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({
      contacts: [{ name: "John Doe" }],
    });
  });

  it("lists a file it cannot read as contacts with its problems, and will not write over it", async () => {
    await writeFile(file, '{ "contacts": [ { "name": "John", } ] }');
    const view = await contacts.list();
    expect(view.problems).toEqual([expect.stringContaining("is not valid JSON")]);
    expect(view.editable).toBe(false);
    expect(view.contacts).toEqual([]);
    const error = await rejection(contacts.add(john, view.version));
    expect(error.code).toBe("contacts_invalid");
    expect(error.message).toContain("fixed by hand");

    await writeFile(file, JSON.stringify({ contacts: [{ name: "John", handles: [JOHN] }] }));
    expect((await contacts.list()).problems).toEqual([
      expect.stringContaining("contacts[0].tier: missing"),
    ]);
  });
});
