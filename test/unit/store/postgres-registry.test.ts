/**
 * The registry as rows in PostgreSQL, on the test run's private server
 * (`test/support/postgres-server.ts`): the contract every registry passes
 * (`registry-contract.ts`), and what a write costs there.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { useTestDatabase } from "../../support/postgres-test-database.js";
import {
  openPostgresDatabase,
  type PostgresDatabase,
} from "../../../src/store/postgres/postgres-database.js";
import { createPostgresRegistryRows } from "../../../src/store/postgres/postgres-registry-rows.js";
import { openRowRegistry, type RowRegistry } from "../../../src/store/row-registry.js";
import { asChatId } from "../../../src/utils/ids.js";
import {
  describeDurableRegistryContract,
  describeRegistryContract,
  makeEntry,
} from "./registry-contract.js";

const postgres = useTestDatabase();
afterEach(() => postgres.closeOpened());

async function open(): Promise<{ registry: RowRegistry; database: PostgresDatabase }> {
  const database = await postgres.open();
  const registry = await openRowRegistry({
    rows: createPostgresRegistryRows({ database }),
    logger: createMemoryLogger(),
  });
  return { registry, database };
}

async function fresh(): Promise<RowRegistry> {
  const cleaner = await openPostgresDatabase({
    url: postgres.url,
    logger: createMemoryLogger(),
  });
  await cleaner.pool.query("TRUNCATE registry, registry_import");
  await cleaner.close();
  return (await open()).registry;
}

describeRegistryContract("postgresql rows", { create: fresh });
describeDurableRegistryContract("postgresql rows", {
  create: fresh,
  openAgain: async () => (await open()).registry,
});

describe("PostgreSQL registry rows", () => {
  it("write only the rows of the chats that changed, through the primary key", async () => {
    await fresh();
    const { registry, database } = await open();
    for (let index = 0; index < 300; index += 1) {
      registry.set(
        asChatId(`+1555000${String(index).padStart(4, "0")}`),
        makeEntry(`chat-${index}`),
      );
    }
    await registry.flush();
    const stamp = async () =>
      (
        await database.pool.query<{ chat_id: string }>(
          "SELECT chat_id FROM registry WHERE xmin::text::bigint = (SELECT max(xmin::text::bigint) FROM registry) ORDER BY chat_id",
        )
      ).rows.map((row) => row.chat_id);
    registry.update(asChatId("+15550000007"), { turns: 1 });
    registry.set(asChatId("+15559999999"), makeEntry("newcomer"));
    await registry.flush();
    // The rows the last transaction wrote: the two that changed, no other.
    expect(await stamp()).toEqual(["+15550000007", "+15559999999"]);
    expect(registry.stats.rowsWritten).toBe(302);
    await registry.close();
  });

  it("a write the server refuses fails flush with the server named, and is retried", async () => {
    await fresh();
    const { registry, database } = await open();
    registry.set(asChatId("+15550000001"), makeEntry("john-doe"));
    await registry.flush();
    // The server refuses this write (a constraint stands in for whatever it may refuse).
    await database.pool.query(
      "ALTER TABLE registry ADD CONSTRAINT refuse_jane CHECK (session_name <> 'jane-roe')",
    );
    registry.set(asChatId("+15550000002"), makeEntry("jane-roe"));
    const failure = await registry.flush().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toMatchObject({ code: "registry_write_failed" });
    expect(String((failure as Error).message)).toMatch(/postgres:\/\/[^:@]+@127\.0\.0\.1/);
    expect(registry.stats.failedWrites).toBe(1);
    // The change is kept: once the server takes it, the next flush writes it.
    await database.pool.query("ALTER TABLE registry DROP CONSTRAINT refuse_jane");
    await registry.flush();
    const { rows } = await database.pool.query("SELECT chat_id FROM registry ORDER BY chat_id");
    expect(rows.map((row: { chat_id: string }) => row.chat_id)).toEqual([
      "+15550000001",
      "+15550000002",
    ]);
    await registry.close();
  });
});

describe("PostgreSQL registry rows: the import", () => {
  it("is done once when two nodes start on a new database at the same moment, losing no file", async () => {
    await fresh();
    const folders = await Promise.all(
      ["a", "b"].map((node) => mkdtemp(join(tmpdir(), `dispatch-pg-import-${node}-`))),
    );
    try {
      const files = folders.map((folder) => join(folder, "sessions.json"));
      await writeFile(files[0]!, JSON.stringify({ "+15550000001": seed("node-a-chat") }));
      await writeFile(files[1]!, JSON.stringify({ "+15550000002": seed("node-b-chat") }));
      const loggers = [createMemoryLogger(), createMemoryLogger()];
      const databases = await Promise.all(loggers.map(() => postgres.open()));
      const registries = await Promise.all(
        databases.map((database, index) =>
          openRowRegistry({
            rows: createPostgresRegistryRows({ database }),
            logger: loggers[index]!,
            file: files[index]!,
          }),
        ),
      );
      const { rows } = await databases[0]!.pool.query("SELECT count(*) AS n FROM registry_import");
      expect(Number((rows[0] as { n: string }).n)).toBe(1);
      // Both nodes hold what the database holds: the one file that was imported.
      const held = registries.map((registry) => [...registry.entries()].map(([chatId]) => chatId));
      expect(held[0]).toEqual(held[1]);
      expect(held[0]).toHaveLength(1);
      // The other node's file is kept aside, not lost to the export that replaced it.
      const other = held[0]![0] === "+15550000001" ? 1 : 0;
      const keptAside = (await readdir(folders[other]!)).filter((name) =>
        name.startsWith("sessions.json.not-imported-"),
      );
      expect(keptAside).toHaveLength(1);
      expect(
        Object.keys(
          JSON.parse(await readFile(join(folders[other]!, keptAside[0]!), "utf8")) as object,
        ),
      ).toEqual([other === 1 ? "+15550000002" : "+15550000001"]);
      await Promise.all(registries.map((registry) => registry.close()));
    } finally {
      await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
    }
  });
});

function seed(name: string) {
  return {
    session_name: name,
    contact_name: null,
    tier: "favorite",
    session_id: `${name}-session`,
    created_at: "2026-02-01T10:00:00.000Z",
    last_message_time: null,
  };
}
