/**
 * The registry as rows in the SQLite state database: the contract every registry passes
 * (`registry-contract.ts`), and what a write costs.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { openRowRegistry, type RowRegistry } from "../../../src/store/row-registry.js";
import { openStateDatabase, type Database } from "../../../src/store/sqlite-database.js";
import { createSqliteRegistryRows } from "../../../src/store/sqlite-registry-rows.js";
import { asChatId } from "../../../src/utils/ids.js";
import {
  describeDurableRegistryContract,
  describeRegistryContract,
  describeRowRegistryContract,
  makeEntry,
} from "./registry-contract.js";

const opened: Database[] = [];
let folder: string | undefined;

async function openOn(path: string): Promise<RowRegistry> {
  const db = openStateDatabase({ path, logger: createMemoryLogger() });
  opened.push(db);
  return openRowRegistry({ rows: createSqliteRegistryRows({ db }), logger: createMemoryLogger() });
}

async function fresh(): Promise<RowRegistry> {
  folder = await mkdtemp(join(tmpdir(), "dispatch-registry-rows-"));
  return openOn(join(folder, "journal.db"));
}

afterEach(async () => {
  for (const db of opened.splice(0)) if (db.open) db.close();
  if (folder) await rm(folder, { recursive: true, force: true });
  folder = undefined;
});

describeRegistryContract("sqlite rows", { create: fresh });
describeDurableRegistryContract("sqlite rows", {
  create: fresh,
  openAgain: () => openOn(join(folder!, "journal.db")),
});

describeRowRegistryContract("sqlite rows", {
  create: fresh,
  openAgain: () => openOn(join(folder!, "journal.db")),
  rows: () => {
    const db = openStateDatabase({
      path: join(folder!, "journal.db"),
      logger: createMemoryLogger(),
    });
    opened.push(db);
    return Promise.resolve(createSqliteRegistryRows({ db }));
  },
});

describe("SQLite registry rows", () => {
  it("write only the rows of the chats that changed", async () => {
    const registry = await fresh();
    for (let index = 0; index < 500; index += 1) {
      registry.set(
        asChatId(`+1555000${String(index).padStart(4, "0")}`),
        makeEntry(`chat-${index}`),
      );
    }
    await registry.flush();
    expect(registry.stats.rowsWritten).toBe(500);
    const db = opened[0]!;
    const before = db.prepare("SELECT total_changes() AS changes").get() as { changes: number };
    registry.update(asChatId("+15550000007"), { turns: 1 });
    registry.set(asChatId("+15559999999"), makeEntry("newcomer"));
    await registry.flush();
    const after = db.prepare("SELECT total_changes() AS changes").get() as { changes: number };
    expect(after.changes - before.changes).toBe(2);
    expect(registry.stats.rowsWritten).toBe(502);
    await registry.close();
  });

  it("refuses to open on a row that is not a valid entry, naming it and what to do", async () => {
    const registry = await fresh();
    registry.set(asChatId("+15550000001"), makeEntry("john-doe"));
    await registry.close();
    opened[0]!.prepare('UPDATE registry SET entry = \'{"session_name": "../x"}\'').run();
    await expect(openOn(join(folder!, "journal.db"))).rejects.toMatchObject({
      code: "registry_corrupt",
      message: expect.stringMatching(
        /registry row of chat "\+15550000001" in .*journal\.db is not a valid entry.*DELETE FROM registry/s,
      ) as unknown,
    });
  });
});
