import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DispatchError } from "../../../src/utils/errors.js";
import type { ContactsFile } from "../../../src/identity/contacts-file.js";
import { readContactsFile, writeContactsFile } from "../../../src/store/contacts-file-writer.js";

let folder: string;
let file: string;
const OPTIONS = { knownTiers: ["favorite", "family"] };

beforeEach(async () => {
  folder = await mkdtemp(path.join(os.tmpdir(), "dispatch-contacts-writer-"));
  file = path.join(folder, "contacts.json");
});
afterEach(async () => {
  await rm(folder, { recursive: true, force: true });
});

/** A book of `count` contacts, big enough that a write takes more than one system call. */
function book(count: number, tier: string): ContactsFile {
  return {
    contacts: Array.from({ length: count }, (_, index) => ({
      name: `Contact ${index}`,
      tier,
      handles: [`+1555${String(index).padStart(7, "0")}`, `contact${index}@example.com`],
    })),
    groups: [],
  };
}

describe("writeContactsFile", () => {
  it("replaces the file whole: a reader polling it meanwhile sees the old book or the new, never part", async () => {
    // What a watcher reloading contacts.json on each change would see.
    const first = book(300, "favorite");
    let version = (await writeContactsFile(file, first, { ...OPTIONS, expectedVersion: null }))
      .version;
    let writing = true;
    const seen = new Set<string>();
    let torn = 0;
    const reader = (async () => {
      while (writing) {
        const text = await readFile(file, "utf8");
        try {
          const json = JSON.parse(text) as ContactsFile;
          seen.add(`${json.contacts.length}:${json.contacts[0]?.tier}`);
        } catch {
          torn += 1;
        }
      }
    })();
    for (let round = 0; round < 10; round += 1) {
      const next = book(round % 2 === 0 ? 200 : 300, round % 2 === 0 ? "family" : "favorite");
      version = (await writeContactsFile(file, next, { ...OPTIONS, expectedVersion: version }))
        .version;
    }
    writing = false;
    await reader;
    expect(torn).toBe(0);
    expect([...seen].every((entry) => ["300:favorite", "200:family"].includes(entry))).toBe(true);
    // No temp file is left beside it.
    expect(await readdir(folder)).toEqual(["contacts.json"]);
  });

  it("validates as the daemon's loader does, and writes nothing when it refuses", async () => {
    await writeFile(file, '{"contacts": []}');
    const { version } = await readContactsFile(file);
    let caught: unknown;
    try {
      await writeContactsFile(
        file,
        { contacts: [{ name: "X", tier: "vip", handles: ["+15551234567"] }], groups: [] },
        { ...OPTIONS, expectedVersion: version },
      );
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DispatchError);
    expect((caught as DispatchError).code).toBe("contacts_invalid");
    expect((caught as DispatchError).message).toContain('contacts[0].tier: unknown tier "vip"');
    expect(await readFile(file, "utf8")).toBe('{"contacts": []}');
  });

  it("gives each content its own version, and none for a missing file", async () => {
    expect((await readContactsFile(file)).version).toBeNull();
    await writeFile(file, '{"contacts": []}');
    const first = (await readContactsFile(file)).version;
    await writeFile(file, '{"contacts": [] }');
    const second = (await readContactsFile(file)).version;
    expect(first).not.toBeNull();
    expect(second).not.toBe(first);
  });
});
