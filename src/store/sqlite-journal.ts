/**
 * The journal in the state database (see `sqlite-database.ts` for the schema and
 * `docs/journal.md` for the states), in three parts: the way in (`sqlite-journal-inbox.ts`:
 * messages and cursors), the way out (`sqlite-journal-outbox.ts`: replies) and the cost history
 * (`sqlite-journal-turns.ts`); retention and counts span them and live here. Statements are
 * prepared once; every write is one transaction, so a crash leaves each message, its cursor and
 * its reply either fully recorded or not at all. SQLite is synchronous: each method does its work
 * when called and returns a settled promise.
 */
import type { Clock } from "../utils/clock.js";
import { systemClock } from "../utils/clock.js";
import {
  DEFAULT_RETENTION_MS,
  type InboundStatus,
  type Journal,
  type OutboxStatus,
} from "./journal.js";
import { checkRetention, emptyCounts } from "./journal-rows.js";
import { journalError, journalGuard, type Database } from "./sqlite-database.js";
import { createWalSync, durableWrites } from "./sqlite-durability.js";
import { createSqliteJournalInbox } from "./sqlite-journal-inbox.js";
import { createSqliteJournalOutbox, UNSENT } from "./sqlite-journal-outbox.js";
import { createSqliteJournalTurns } from "./sqlite-journal-turns.js";

export interface SqliteJournalOptions {
  db: Database;
  clock?: Clock;
}

/** What the journal's parts share. */
export interface SqliteJournalContext {
  db: Database;
  clock: Clock;
  /** The file, for messages. */
  path: string;
  /** Runs `work`, turning a SQLite failure into a `journal_*` `DispatchError`. */
  guard: <T>(action: string, work: () => T) => T;
  /**
   * Runs `work` now, as `guard` does, and gives its result or failure as a settled promise: a
   * caller that reads the journal right after a write, without waiting for it, sees it.
   */
  run: <T>(action: string, work: () => T) => Promise<T>;
  /**
   * Runs a write fsynced before it returns: a reply (it is sent next) and a replay's attempt (the
   * id it is handed over under). A recorded message is not: it must survive a power cut only by
   * the time it is acknowledged, and the agent can read it meanwhile; `sync()` fsyncs it for a
   * caller that acknowledges before any reply. Every other write is bookkeeping a power cut may
   * undo: delivered (replayed like received), sent (an unconfirmed part is resent or abandoned),
   * rejected (refused again), turn costs, pruning.
   */
  durable: <T>(write: () => T) => T;
}

/** Ids of answered or rejected messages whose whole turn is older than @bound and fully sent. */
const PRUNABLE = `
  SELECT id FROM inbound WHERE status IN ('answered', 'rejected')
    AND coalesce(answered_by, id) IN (
      SELECT coalesce(answered_by, id) AS answerer FROM inbound
      WHERE status IN ('answered', 'rejected')
      GROUP BY answerer
      HAVING max(updated_at) < @bound
        AND NOT EXISTS (
          SELECT 1 FROM outbox WHERE outbox.inbound_id = answerer AND outbox.status IN ${UNSENT}))`;

export function createSqliteJournal(options: SqliteJournalOptions): Journal {
  const { db } = options;
  const path = db.name;
  const guard = journalGuard(path);
  // The executor runs at once; what it throws rejects the promise.
  const run = <T>(action: string, work: () => T): Promise<T> =>
    new Promise<T>((resolve) => resolve(guard(action, work)));
  const context: SqliteJournalContext = {
    db,
    clock: options.clock ?? systemClock,
    path,
    guard,
    run,
    durable: durableWrites(db),
  };
  const walSync = createWalSync(db);

  const statements = guard("prepare statements for", () => ({
    inboundCounts: db.prepare<[], { status: InboundStatus; count: number }>(
      `SELECT status, count(*) AS count FROM inbound GROUP BY status`,
    ),
    outboxCounts: db.prepare<[], { status: OutboxStatus; count: number }>(
      `SELECT status, count(*) AS count FROM outbox GROUP BY status`,
    ),
    // A turn's messages share their answerer's outbox, so they are pruned together: a group is
    // old when its newest member is, and done when no part of its reply is still to be sent.
    pruneOutbox: db.prepare(`DELETE FROM outbox WHERE inbound_id IN (${PRUNABLE})`),
    pruneInbound: db.prepare(`DELETE FROM inbound WHERE id IN (${PRUNABLE})`),
  }));

  const prune = db.transaction((bound: number) => {
    const outbox = statements.pruneOutbox.run({ bound }).changes;
    const inbound = statements.pruneInbound.run({ bound }).changes;
    return { inbound, outbox };
  });

  return {
    ...createSqliteJournalInbox(context),
    ...createSqliteJournalOutbox(context),
    ...createSqliteJournalTurns(context),
    counts() {
      return run("read", () => {
        const counts = emptyCounts();
        for (const row of statements.inboundCounts.all()) counts.inbound[row.status] = row.count;
        for (const row of statements.outboxCounts.all()) counts.outbox[row.status] = row.count;
        return counts;
      });
    },
    prune(pruneOptions = {}) {
      const olderThanMs = pruneOptions.olderThanMs ?? DEFAULT_RETENTION_MS;
      return run("prune", () => {
        checkRetention(olderThanMs);
        return prune(context.clock.now() - olderThanMs);
      });
    },
    async sync() {
      try {
        await walSync.sync();
      } catch (error) {
        throw journalError(error, path, "sync");
      }
    },
    close() {
      return run("close", () => {
        walSync.close();
        if (db.open) db.close();
      });
    },
  };
}
