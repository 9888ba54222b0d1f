/**
 * The journal (`../journal.ts`) in PostgreSQL, the SQLite journal's tables and states
 * (`docs/journal.md`), for several nodes writing one journal (`docs/cluster.md`). In three parts,
 * as the SQLite adapter: the way in (`postgres-journal-inbox.ts`), the way out
 * (`postgres-journal-outbox.ts`) and the cost history (`postgres-journal-turns.ts`); retention
 * and counts span them and live here.
 *
 * Every write of one operation is one transaction (a message and its cursor; a turn's answer and
 * its reply parts), or one statement. Ids come from the database. A commit is durable when it
 * returns (the server's `synchronous_commit`, on by default), so `sync()` has nothing to wait for.
 * Failures are `DispatchError`s naming the server without its password (`database_*` codes), or
 * the journal's own for a caller's mistake (`journal_unknown_inbound`, `journal_conflict`...).
 */
import { systemClock, type Clock } from "../../utils/clock.js";
import {
  DEFAULT_RETENTION_MS,
  type InboundStatus,
  type Journal,
  type OutboxStatus,
} from "../journal.js";
import { checkRetention, emptyCounts } from "../journal-rows.js";
import type { PostgresDatabase } from "./postgres-database.js";
import { createPostgresJournalContext } from "./postgres-journal-context.js";
import { createPostgresJournalInbox } from "./postgres-journal-inbox.js";
import { createPostgresJournalOutbox } from "./postgres-journal-outbox.js";
import { createPostgresJournalTurns } from "./postgres-journal-turns.js";

export interface PostgresJournalOptions {
  database: PostgresDatabase;
  clock?: Clock;
}

/** Ids of answered or rejected messages whose whole turn is older than $1 and fully sent. */
const PRUNABLE = `
  SELECT id FROM inbound WHERE status IN ('answered', 'rejected')
    AND coalesce(answered_by, id) IN (
      SELECT turn.answerer FROM (
        SELECT coalesce(answered_by, id) AS answerer, max(updated_at) AS newest FROM inbound
        WHERE status IN ('answered', 'rejected')
        GROUP BY 1) AS turn
      WHERE turn.newest < $1
        AND NOT EXISTS (
          SELECT 1 FROM outbox
          WHERE outbox.inbound_id = turn.answerer AND outbox.status IN ('pending', 'failed')))`;

export function createPostgresJournal(options: PostgresJournalOptions): Journal {
  const { database } = options;
  const context = createPostgresJournalContext(database, options.clock ?? systemClock);
  const { query, transaction } = context;
  let closed: Promise<void> | undefined;

  return {
    ...createPostgresJournalInbox(context),
    ...createPostgresJournalOutbox(context),
    ...createPostgresJournalTurns(context),
    async counts() {
      const counts = emptyCounts();
      const inbound = await query<{ status: InboundStatus; count: string }>(
        "read",
        `SELECT status, count(*) AS count FROM inbound GROUP BY status`,
        [],
      );
      const outbox = await query<{ status: OutboxStatus; count: string }>(
        "read",
        `SELECT status, count(*) AS count FROM outbox GROUP BY status`,
        [],
      );
      for (const row of inbound) counts.inbound[row.status] = Number(row.count);
      for (const row of outbox) counts.outbox[row.status] = Number(row.count);
      return counts;
    },
    async prune(pruneOptions = {}) {
      const olderThanMs = pruneOptions.olderThanMs ?? DEFAULT_RETENTION_MS;
      checkRetention(olderThanMs);
      const bound = context.clock.now() - olderThanMs;
      return transaction("prune", async (client) => {
        // A turn's messages share their answerer's outbox, so they are pruned together.
        const outbox = await client.query(`DELETE FROM outbox WHERE inbound_id IN (${PRUNABLE})`, [
          bound,
        ]);
        const inbound = await client.query(`DELETE FROM inbound WHERE id IN (${PRUNABLE})`, [
          bound,
        ]);
        return { inbound: inbound.rowCount ?? 0, outbox: outbox.rowCount ?? 0 };
      });
    },
    sync: () => Promise.resolve(),
    close() {
      closed ??= database.close();
      return closed;
    },
  };
}
