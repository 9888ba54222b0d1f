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
import { createSessionName } from "../../../src/identity/session-name.js";
import { asAgentSessionId, asChatId } from "../../../src/utils/ids.js";
import {
  describeDurableRegistryContract,
  describeRegistryContract,
  describeRowRegistryContract,
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

describeRowRegistryContract("postgresql rows", {
  create: fresh,
  openAgain: async () => (await open()).registry,
  rows: async () => {
    const database = await postgres.open();
    return createPostgresRegistryRows({ database });
  },
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

describe("PostgreSQL registry rows: new chats on two nodes", () => {
  it("withNameLock lets one node pick names at a time", async () => {
    await fresh();
    const rowsOf = await Promise.all(
      [0, 1].map(async () => {
        const database = await postgres.open();
        return createPostgresRegistryRows({ database });
      }),
    );
    const events: string[] = [];
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        rowsOf[index % 2]!.withNameLock(async () => {
          inside += 1;
          most = Math.max(most, inside);
          events.push(`in ${index}`);
          // Long enough that the other node's call is waiting on the lock meanwhile.
          await new Promise((resolve) => setTimeout(resolve, 20));
          events.push(`out ${index}`);
          inside -= 1;
        }),
      ),
    );
    expect(most).toBe(1);
    expect(events).toHaveLength(16);
  });

  it("never gives one name to two people's new chats registered at the same time on two nodes", async () => {
    await fresh();
    const nodes = [(await open()).registry, (await open()).registry];
    const rounds = 15;
    for (let round = 0; round < rounds; round += 1) {
      // Two people called John Doe, one on each node, at once; the entry as the router makes it.
      await Promise.all(
        nodes.map((node, index) =>
          node.registerExclusive(asChatId(`+1555${round}00${index}`), (isNameTaken) =>
            makeEntry(createSessionName("John Doe", isNameTaken), {
              session_id: asAgentSessionId(`session-${round}-${index}`),
            }),
          ),
        ),
      );
    }
    const database = await postgres.open();
    const { rows } = await database.pool.query<{ chat_id: string; session_name: string }>(
      "SELECT chat_id, session_name FROM registry",
    );
    expect(rows).toHaveLength(rounds * 2);
    expect(new Set(rows.map((row) => row.session_name)).size).toBe(rounds * 2);
    // Each node holds its chats under the names the rows give them.
    const stored = new Map(rows.map((row) => [row.chat_id, row.session_name]));
    for (const node of nodes) {
      for (const [chatId, entry] of [...node.entries()]) {
        expect(entry.session_name).toBe(stored.get(chatId));
      }
    }
    await Promise.all(nodes.map((node) => node.close()));
  });

  it("registers a chat both nodes are asked for at once only once, under one name", async () => {
    await fresh();
    const nodes = [(await open()).registry, (await open()).registry];
    for (let round = 0; round < 10; round += 1) {
      const chatId = asChatId(`+1555777${String(round).padStart(4, "0")}`);
      const entries = await Promise.all(
        nodes.map((node, index) =>
          node.registerExclusive(chatId, (isNameTaken) =>
            makeEntry(createSessionName("Jane Roe", isNameTaken), {
              session_id: asAgentSessionId(`jane-${round}-${index}`),
            }),
          ),
        ),
      );
      expect(entries[1]).toEqual(entries[0]);
    }
    const database = await postgres.open();
    const { rows } = await database.pool.query<{ n: string; names: string }>(
      "SELECT count(*) AS n, count(DISTINCT session_name) AS names FROM registry",
    );
    expect(rows[0]).toEqual({ n: "10", names: "10" });
    await Promise.all(nodes.map((node) => node.close()));
  });

  it("registers as many new chats at once on one node as its pool has connections", async () => {
    // Each registration held a pool connection waiting on the lock while its work asked the
    // same pool for more: ten at once held all ten, and the first failed after 10 s.
    await fresh();
    const { registry } = await open();
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, index) =>
        registry.registerExclusive(asChatId(`+1555123${String(index).padStart(4, "0")}`), () =>
          makeEntry(`new-chat-${index}`),
        ),
      ),
    );
    expect(results.filter((outcome) => outcome.status === "rejected")).toEqual([]);
    expect(registry.size).toBe(12);
    await registry.close();
  });

  it("leaves no name behind from a registration whose write failed", async () => {
    // The failed entry stayed pending and was written later, outside the lock, under the name
    // another node had given a second person meanwhile.
    await fresh();
    const [first, second] = [await open(), await open()];
    const john = asChatId("+15550000001");
    const other = asChatId("+15550000002");
    await first.database.pool.query(
      `ALTER TABLE registry ADD CONSTRAINT refuse_john CHECK (chat_id <> '${john}')`,
    );
    const make = (isNameTaken: (name: string) => boolean) =>
      makeEntry(createSessionName("John Doe", isNameTaken));
    try {
      await expect(first.registry.registerExclusive(john, make)).rejects.toMatchObject({
        code: "registry_write_failed",
      });
      expect((await second.registry.registerExclusive(other, make)).session_name).toBe("john-doe");
    } finally {
      await first.database.pool.query("ALTER TABLE registry DROP CONSTRAINT refuse_john");
    }
    await first.registry.flush().catch(() => undefined);
    const { rows } = await first.database.pool.query<{ chat_id: string }>(
      "SELECT chat_id FROM registry WHERE session_name = 'john-doe'",
    );
    expect(rows.map((row) => row.chat_id)).toEqual([other]);
    expect(first.registry.get(john)).toBeUndefined();
    await Promise.all([first.registry.close(), second.registry.close()]);
  });
});
