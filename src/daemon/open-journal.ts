/**
 * The daemon's journal: in the SQLite state database (the default), or in PostgreSQL when a
 * database is configured (`database.url`, `docs/cluster.md`). Either way the state database stays
 * open for what has not moved (the dashboard's activity), and closing the journal closes it too:
 * close the journal last. The PostgreSQL database is shared with the registry and the transcript
 * mirror, and closed by the daemon that opened it, not by the journal.
 */
import type { Clock } from "../utils/clock.js";
import type { Journal } from "../store/journal.js";
import type { PostgresDatabase } from "../store/postgres/postgres-database.js";
import { createPostgresJournal } from "../store/postgres/postgres-journal.js";
import type { Database } from "../store/sqlite-database.js";
import { createSqliteJournal } from "../store/sqlite-journal.js";

export interface OpenJournalOptions {
  /** The cluster's database; undefined: the SQLite journal. */
  shared: PostgresDatabase | undefined;
  stateDatabase: Database;
  clock: Clock;
}

export function openJournal(options: OpenJournalOptions): Journal {
  const { shared, stateDatabase, clock } = options;
  if (shared === undefined) return createSqliteJournal({ db: stateDatabase, clock });
  const journal = createPostgresJournal({ database: shared, clock });
  return {
    ...journal,
    close() {
      if (stateDatabase.open) stateDatabase.close();
      return Promise.resolve();
    },
  };
}
