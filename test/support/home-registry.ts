/**
 * The registry of a dispatch home as the daemon opens it: rows in `state/journal.db`, with
 * `state/sessions.json` imported on first open and kept as the export. For tests and their child
 * processes that work on a home without the daemon, and for reading what a daemon registered.
 */
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import type { Logger } from "../../src/logging/logger.js";
import type { RegistryEntry } from "../../src/store/registry.js";
import { openRowRegistry, type RowRegistry } from "../../src/store/row-registry.js";
import { openStateDatabase, type Database } from "../../src/store/sqlite-database.js";
import { createSqliteRegistryRows } from "../../src/store/sqlite-registry-rows.js";

export function stateDatabasePath(home: string): string {
  return path.join(home, "dispatch", "state", "journal.db");
}

/**
 * Opens the home's registry on `db`, or on a state database of its own that its `close()` closes
 * too.
 */
export async function openHomeRegistry(
  home: string,
  logger: Logger,
  db?: Database,
): Promise<RowRegistry> {
  const database = db ?? openStateDatabase({ path: stateDatabasePath(home), logger });
  const registry = await openRowRegistry({
    rows: createSqliteRegistryRows({ db: database }),
    file: path.join(home, "dispatch", "state", "sessions.json"),
    logger,
  });
  if (db === undefined) {
    const close = registry.close.bind(registry);
    registry.close = async () => {
      await close();
      if (database.open) database.close();
    };
  }
  return registry;
}

/** What the home's registry rows hold now, by chat id (read-only, beside a running daemon). */
export function readRegistryRows(home: string): Record<string, RegistryEntry> {
  const db = new BetterSqlite3(stateDatabasePath(home), { readonly: true });
  try {
    const rows = db.prepare("SELECT chat_id, entry FROM registry").all() as {
      chat_id: string;
      entry: string;
    }[];
    return Object.fromEntries(
      rows.map((row) => [row.chat_id, JSON.parse(row.entry) as RegistryEntry]),
    );
  } finally {
    db.close();
  }
}
