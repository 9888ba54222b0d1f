import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { asChatId, DEFAULT_TIERS } from "../../../src/utils/ids.js";
import { watchContactsFile, type ContactsReload } from "../../../src/daemon/contacts-reload.js";
import { loadContacts, type ContactBook } from "../../../src/identity/contacts.js";
import { createMemoryLogger, type LogRecord } from "../../support/memory-logger.js";

let folder: string;
let file: string;
let reload: ContactsReload | undefined;
let applied: ContactBook[];
let records: LogRecord[];

const JOHN = { name: "John Doe", tier: "favorite", handles: ["+15551234567"] };
const JANE = { name: "Jane Roe", tier: "family", handles: ["jane@example.com"] };

beforeEach(async () => {
  folder = await mkdtemp(path.join(tmpdir(), "dispatch-contacts-reload-"));
  file = path.join(folder, "contacts.json");
  await writeFile(file, JSON.stringify({ contacts: [JOHN] }));
  applied = [];
  records = [];
  reload = watchContactsFile({
    file,
    load: () => loadContacts(file, { knownTiers: DEFAULT_TIERS }),
    apply: (book) => applied.push(book),
    logger: createMemoryLogger(records),
    settleMs: 20,
  });
});

afterEach(async () => {
  await reload?.close();
  await rm(folder, { recursive: true, force: true });
});

const logged = (message: string) => records.filter((record) => record.message === message);
const waitFor = (condition: () => boolean) =>
  vi.waitFor(() => expect(condition()).toBe(true), { timeout: 10_000, interval: 20 });

describe("watchContactsFile", () => {
  it("applies a valid edit whole and logs what it now holds", async () => {
    await writeFile(file, JSON.stringify({ contacts: [JOHN, JANE] }));
    await waitFor(() => applied.length === 1);
    expect(applied[0]!.lookup(asChatId("jane@example.com"))?.name).toBe("Jane Roe");
    expect(logged("contacts-reload")[0]?.fields).toMatchObject({ file, contacts: 2, groups: 0 });
  });

  it("refuses an invalid edit with every problem logged, keeps the old book, and applies the next valid one", async () => {
    await writeFile(
      file,
      JSON.stringify({ contacts: [JANE, { ...JOHN, tier: "bogus" }, { name: "X", handles: [] }] }),
    );
    await waitFor(() => logged("contacts-reload-refuse").length === 1);
    const reason = String(logged("contacts-reload-refuse")[0]!.fields["reason"]);
    expect(reason).toContain('contacts[1].tier: unknown tier "bogus"');
    expect(reason).toContain("contacts[2].tier: missing");
    expect(applied).toHaveLength(0);

    await writeFile(file, JSON.stringify({ contacts: [JANE] }));
    await waitFor(() => applied.length === 1);
    expect(applied[0]!.lookup(asChatId("+15551234567"))).toBeUndefined();
    expect(applied[0]!.lookup(asChatId("jane@example.com"))?.tier).toBe("family");
  });

  it("sees an editor's save that writes a new file and renames it over the old one", async () => {
    const temporary = path.join(folder, ".contacts.json.swp");
    await writeFile(temporary, JSON.stringify({ contacts: [JANE] }));
    await rename(temporary, file);
    await waitFor(() => applied.length === 1);
    expect(applied[0]!.size).toBe(1);
    expect(applied[0]!.lookup(asChatId("jane@example.com"))?.name).toBe("Jane Roe");
  });

  it("a deleted file is an empty book: every sender is unknown again", async () => {
    await rm(file);
    await waitFor(() => applied.length === 1);
    expect(applied[0]!.size).toBe(0);
    expect(logged("contacts-reload")[0]?.fields).toMatchObject({ removed: true, contacts: 0 });
  });
});
