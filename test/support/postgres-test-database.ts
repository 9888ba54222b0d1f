/**
 * A test file's own PostgreSQL database on the run's private server (`postgres-server.ts`), and
 * the connection pools its tests open on it. Call `useTestDatabase()` at the top of the file: the
 * database is created before the file's tests, and every pool `open` opened is closed after them
 * (or sooner, by `closeOpened`, as a contract suite's cleanup after each test does).
 */
import { afterAll, beforeAll } from "vitest";
import type { Logger } from "../../src/logging/logger.js";
import {
  openPostgresDatabase,
  type PostgresDatabase,
} from "../../src/store/postgres/postgres-database.js";
import { createMemoryLogger } from "./memory-logger.js";
import { createTestDatabase } from "./postgres-server.js";

export interface TestDatabase {
  /** The database's URL, there once the file's `beforeAll` hooks run. */
  readonly url: string;
  /** A connection pool on the database (a node's, a process's), migrated as dispatch opens it. */
  open(logger?: Logger): Promise<PostgresDatabase>;
  /** Closes every pool `open` has opened so far. */
  closeOpened(): Promise<void>;
}

export function useTestDatabase(): TestDatabase {
  let url: string | undefined;
  const opened: PostgresDatabase[] = [];
  const closeOpened = async (): Promise<void> => {
    await Promise.all(opened.splice(0).map((database) => database.close()));
  };
  beforeAll(async () => {
    url = await createTestDatabase();
  });
  afterAll(closeOpened);
  return {
    get url() {
      if (url === undefined) {
        throw new Error(
          "The test database is created in beforeAll: read its url in a hook or test",
        );
      }
      return url;
    },
    async open(logger = createMemoryLogger()) {
      const database = await openPostgresDatabase({ url: this.url, logger });
      opened.push(database);
      return database;
    },
    closeOpened,
  };
}
