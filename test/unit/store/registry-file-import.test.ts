/**
 * sessions.json and the rows: an existing file is imported once, on the first start with rows (a
 * corrupt one as before: its last good copy, or a refusal that touches nothing), and from then on
 * it is an export the registry keeps current in the seed's format.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../support/manual-clock.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { asAgentSessionId, asChatId } from "../../../src/utils/ids.js";
import { serialiseRegistry } from "../../../src/store/registry-file-format.js";
import { openRowRegistry, type RowRegistryOptions } from "../../../src/store/row-registry.js";
import { openStateDatabase, type Database } from "../../../src/store/sqlite-database.js";
import { createSqliteRegistryRows } from "../../../src/store/sqlite-registry-rows.js";
import { FAMILY, JANE, JOHN, makeEntry } from "./registry-contract.js";

const EXPORT_MS = 10_000;

let folder: string;
let path: string;
const opened: Database[] = [];
beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-registry-import-"));
  await mkdir(join(folder, "state"));
  path = join(folder, "state", "sessions.json");
});
afterEach(async () => {
  for (const db of opened.splice(0)) if (db.open) db.close();
  await rm(folder, { recursive: true, force: true });
});

async function open(options: Partial<RowRegistryOptions> = {}) {
  const db = openStateDatabase({
    path: join(folder, "state", "journal.db"),
    logger: createMemoryLogger(),
  });
  opened.push(db);
  const logger = createMemoryLogger();
  const clock = new ManualClock(Date.parse("2026-03-04T05:06:07.089Z"));
  const registry = await openRowRegistry({
    rows: createSqliteRegistryRows({ db }),
    logger,
    clock,
    file: path,
    exportDelayMs: EXPORT_MS,
    ...options,
  });
  return { registry, logger, clock, db };
}

async function openError(): Promise<DispatchError> {
  const failure = await open().catch((error: unknown) => error);
  if (!(failure instanceof DispatchError)) throw new Error("expected a DispatchError");
  return failure;
}

const seedEntry = {
  session_name: "john-doe",
  contact_name: "John Doe",
  tier: "favorite",
  session_id: "abc-123-def",
  created_at: "2026-02-01T10:00:00.000Z",
  last_message_time: "2026-02-07T14:30:00.000Z",
};

async function seed(content: unknown, target = path): Promise<void> {
  await writeFile(target, typeof content === "string" ? content : JSON.stringify(content));
}

describe("importing sessions.json into the rows", () => {
  it("imports a seed file once, filling our fields, and keeps it as the export", async () => {
    await seed({
      [JOHN]: seedEntry,
      [FAMILY]: { ...seedEntry, session_name: "family-chat", contact_name: null },
    });
    const first = await open();
    expect(first.registry.get(JOHN)).toEqual({
      ...seedEntry,
      chat_kind: "individual",
      channel: null,
      previous_session_ids: [],
      turns: 0,
      errors: 0,
      restarts: 0,
    });
    expect(first.registry.get(FAMILY)?.chat_kind).toBe("group");
    expect(
      first.logger.records.find((record) => record.message === "registry-import"),
    ).toMatchObject({
      fields: { path, chats: 2, fromLastGood: false },
    });
    expect(first.db.prepare("SELECT count(*) AS n FROM registry").get()).toEqual({ n: 2 });
    await first.registry.close();

    // The export names the rows it came from.
    expect(await readFile(`${path}.source`, "utf8")).toBe(`${first.db.name}\n`);

    // A stale export of these rows (a kill within its window, after a chat was removed) is the
    // export still: nothing is kept aside, and it is written again.
    await seed({ [JOHN]: seedEntry, [FAMILY]: seedEntry, [JANE]: seedEntry });
    const stale = await open();
    expect(
      stale.logger.records.some((record) => record.message === "registry-file-keep-aside"),
    ).toBe(false);
    await stale.registry.close();

    // Later starts never import the file again, not even one from elsewhere (another node's, no
    // `.source` naming these rows).
    await seed({ [JANE]: { ...seedEntry, session_name: "jane-roe" } });
    await rm(`${path}.source`);
    const second = await open();
    expect([...second.registry.entries()].map(([chatId]) => chatId).sort()).toEqual(
      [JOHN, FAMILY].sort(),
    );
    expect(second.logger.records.some((record) => record.message === "registry-import")).toBe(
      false,
    );
    // The file named a chat the rows do not hold: it is kept aside before the export replaces it.
    const keptAs = `${path}.not-imported-2026-03-04T05-06-07.089Z`;
    expect(
      second.logger.records.find((record) => record.message === "registry-file-keep-aside"),
    ).toMatchObject({ level: "warn", fields: { path, keptAs, chats: 1, examples: [JANE] } });
    expect(Object.keys(JSON.parse(await readFile(keptAs, "utf8")) as object)).toEqual([JANE]);
    // ... and the export is written again from the rows at open.
    expect(Object.keys(JSON.parse(await readFile(path, "utf8")) as object).sort()).toEqual(
      [JOHN, FAMILY].sort(),
    );
    await second.registry.close();

    // The export it wrote names no chat the rows lack: the next start keeps nothing aside.
    const third = await open();
    expect(
      third.logger.records.some((record) => record.message === "registry-file-keep-aside"),
    ).toBe(false);
    await third.registry.close();
  });

  it("records the import even with no file, so a later export is never imported", async () => {
    const { registry, db } = await open();
    expect(registry.size).toBe(0);
    expect(db.prepare("SELECT entries FROM registry_import").get()).toEqual({ entries: 0 });
    await registry.close();
    expect(await readFile(path, "utf8")).toBe("{}\n");
  });

  it("imports the last good copy of a corrupt file, keeping the bad file aside", async () => {
    const bad = '{ "+15551234567": { "session_na';
    await seed(bad);
    await seed({ [JOHN]: seedEntry }, `${path}.last-good`);
    const { registry, logger } = await open();
    expect(registry.get(JOHN)?.session_id).toBe("abc-123-def");
    const keptAs = `${path}.corrupt-2026-03-04T05-06-07.089Z`;
    expect(await readFile(keptAs, "utf8")).toBe(bad);
    expect(logger.records.find((record) => record.level === "error")?.fields).toMatchObject({
      path,
      keptAs,
      lastGood: `${path}.last-good`,
    });
    // The export replaces the bad file with what the rows hold.
    expect(Object.keys(JSON.parse(await readFile(path, "utf8")) as object)).toEqual([JOHN]);
    await registry.close();
  });

  it.each([
    ["bad JSON", "not json at all"],
    ["an empty file", ""],
    ["a schema failure", JSON.stringify({ [JOHN]: { ...seedEntry, turns: "many" } })],
    ["an unsafe session name", JSON.stringify({ [JOHN]: { ...seedEntry, session_name: "../x" } })],
  ])("refuses %s with no last good copy, touching nothing", async (_label, content) => {
    await seed(content);
    const error = await openError();
    expect(error.code).toBe("registry_corrupt");
    expect(error.message).toContain(path);
    expect(error.message).toContain(`${path}.last-good does not exist`);
    expect(await readFile(path, "utf8")).toBe(content);
    expect(
      (await readdir(join(folder, "state"))).filter((name) => name.startsWith("sessions")),
    ).toEqual(["sessions.json"]);
    // Nothing was recorded: the next start tries the import again.
    expect(opened[0]!.prepare("SELECT count(*) AS n FROM registry_import").get()).toEqual({ n: 0 });
  });

  it("refuses a file that gives two sessions one name, naming them, importing nothing", async () => {
    await seed({ [JOHN]: seedEntry, [JANE]: { ...seedEntry, session_id: "another-session" } });
    const error = await openError();
    expect(error.code).toBe("registry_duplicate_names");
    expect(error.message).toContain(`"john-doe" (${JOHN}, ${JANE})`);
    expect(opened[0]!.prepare("SELECT count(*) AS n FROM registry").get()).toEqual({ n: 0 });
  });

  it("imports the chats of one person's session, which share its name and session id", async () => {
    await seed({ [JOHN]: seedEntry, [JANE]: seedEntry });
    const { registry } = await open();
    expect(registry.chatsNamed("john-doe").sort()).toEqual([JOHN, JANE].sort());
    await registry.close();
  });

  it("removes temp files a killed export left behind, and nothing else", async () => {
    await seed({ [JOHN]: seedEntry });
    for (const name of ["sessions.json.1234567", "sessions.json.bak"]) {
      await writeFile(join(folder, "state", name), "{ half a fi");
    }
    const { registry } = await open();
    expect(
      (await readdir(join(folder, "state"))).filter((name) => name.startsWith("sessions")).sort(),
    ).toEqual(["sessions.json", "sessions.json.bak", "sessions.json.source"]);
    await registry.close();
  });
});

describe("the sessions.json export", () => {
  it("follows the rows within its delay, in the seed's format, mode 0600, byte for byte", async () => {
    const { registry, clock } = await open();
    const numeric = asChatId("12345"); // an object would put this key first; the file must not
    registry.set(numeric, makeEntry("numbers", { chat_kind: "group" }));
    registry.set(JOHN, makeEntry("john-doe", { turns: 2 }));
    registry.set(FAMILY, makeEntry("family", { chat_kind: "group" }));
    registry.update(JOHN, { session_id: asAgentSessionId("abc") });
    await registry.flush();
    expect(await readFile(path, "utf8")).toBe("{}\n"); // written at open, not yet again
    clock.advance(EXPORT_MS);
    await registry.export!.write(); // waits for the timer's write
    const text = await readFile(path, "utf8");
    expect(text).toBe(serialiseRegistry(registry.entries()));
    const topKeys = [...text.matchAll(/^ {2}"([^"]+)": \{$/gm)].map((match) => match[1]);
    expect(topKeys).toEqual(["+15551234567", "12345", "chat123456789"]);
    expect(Object.keys((JSON.parse(text) as Record<string, object>)[JOHN]!)).toEqual([
      "session_name",
      "contact_name",
      "tier",
      "session_id",
      "created_at",
      "last_message_time",
      "chat_kind",
      "channel",
      "previous_session_ids",
      "turns",
      "errors",
      "restarts",
    ]);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    registry.remove(FAMILY);
    await registry.close(); // close writes it at once
    expect(await readFile(path, "utf8")).toBe(serialiseRegistry(registry.entries()));
    expect(registry.export!.stats.writes).toBe(3);
  });

  it("coalesces a burst of changes into one write of the file", async () => {
    const { registry, clock } = await open();
    const writesAtOpen = registry.export!.stats.writes;
    for (let index = 0; index < 200; index += 1) {
      registry.set(asChatId(`+1555000${index}`), makeEntry(`chat-${index}`));
      registry.update(asChatId(`+1555000${index}`), { turns: 1 });
    }
    clock.advance(EXPORT_MS);
    await registry.export!.write();
    expect(registry.export!.stats.writes - writesAtOpen).toBe(1);
    expect(Object.keys(JSON.parse(await readFile(path, "utf8")) as object)).toHaveLength(200);
    await registry.close();
  });

  it("a failed export is logged and tried again, and never fails the registry", async () => {
    const { registry, logger, clock } = await open();
    // Replace the file by a folder: the rename over it fails until it is a file again.
    await rm(path);
    await mkdir(path);
    await writeFile(join(path, "blocker"), "");
    registry.set(JOHN, makeEntry("john-doe"));
    await registry.flush(); // the rows are written whatever happens to the export
    clock.advance(EXPORT_MS);
    await registry.export!.write();
    expect(
      logger.records.find((record) => record.message === "registry-export-failed")?.level,
    ).toBe("error");
    await rm(path, { recursive: true });
    clock.advance(EXPORT_MS);
    await registry.export!.write();
    expect(Object.keys(JSON.parse(await readFile(path, "utf8")) as object)).toEqual([JOHN]);
    await registry.close();
  });
});
