/**
 * The daemon's journal: in the SQLite state database (the default), or in PostgreSQL when a
 * database URL is given (`docs/cluster.md`). Either way the state database stays open for what
 * has not moved yet (the transcript mirror, the dashboard's activity), and closing the journal
 * closes it too: close the journal last.
 *
 * The URL comes from `DISPATCH_DATABASE_URL` for now; `database.url` in the config, validated at
 * the boundary, takes its place when the configuration learns it (issue 14).
 */
import type { Clock } from "../utils/clock.js";
import type { Logger } from "../logging/logger.js";
import type { Journal } from "../store/journal.js";
import { openPostgresDatabase } from "../store/postgres/postgres-database.js";
import { createPostgresJournal } from "../store/postgres/postgres-journal.js";
import type { Database } from "../store/sqlite-database.js";
import { createSqliteJournal } from "../store/sqlite-journal.js";

export interface OpenJournalOptions {
  /** `postgres://...`; undefined or empty: the SQLite journal. */
  databaseUrl: string | undefined;
  stateDatabase: Database;
  clock: Clock;
  logger: Logger;
}

export async function openJournal(options: OpenJournalOptions): Promise<Journal> {
  const { databaseUrl, stateDatabase, clock, logger } = options;
  if (databaseUrl === undefined || databaseUrl === "") {
    return createSqliteJournal({ db: stateDatabase, clock });
  }
  const database = await openPostgresDatabase({ url: databaseUrl, logger });
  logger.info("journal-postgres", { target: database.target });
  const journal = createPostgresJournal({ database, clock });
  return {
    ...journal,
    async close() {
      await journal.close();
      if (stateDatabase.open) stateDatabase.close();
    },
  };
}
