/**
 * Registry rows (`../registry-rows.ts`) in PostgreSQL, table `registry`, the SQLite adapter's
 * table. A batch is one transaction on one connection (deletes, then one upsert of every changed
 * row through `unnest`), so it is all or nothing and costs a few round trips whatever its size.
 * A transaction holds no session state, so this works behind a transaction-mode pooler too. A
 * bookkeeping batch commits with `synchronous_commit` off (`SET LOCAL`): it may be lost to a
 * crash of the database server, never to one of dispatch, and waits for no WAL flush.
 */
import type pg from "pg";
import { systemClock, type Clock } from "../../utils/clock.js";
import type { ChatId } from "../../utils/ids.js";
import type { RegistryEntry } from "../registry.js";
import {
  decodeEntry,
  encodeEntry,
  type RegistryImportRecord,
  type RegistryRowChange,
  type RegistryRows,
} from "../registry-rows.js";
import { inTransaction, queryRows, type PostgresDatabase } from "./postgres-database.js";

export interface PostgresRegistryRowsOptions {
  database: PostgresDatabase;
  clock?: Clock;
}

const UPSERT = `
  INSERT INTO registry (chat_id, session_name, session_id, entry, updated_at)
  SELECT chat_id, session_name, session_id, entry, $5
  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
    AS batch (chat_id, session_name, session_id, entry)
  ON CONFLICT (chat_id) DO %s`;
/** The advisory lock key new chats' names are picked under (`withNameLock`): any fixed bigint. */
const SESSION_NAMES_LOCK = 0x64697370_6e616d65n.toString();

const UPDATE_ROW = `UPDATE SET session_name = excluded.session_name,
    session_id = excluded.session_id, entry = excluded.entry, updated_at = excluded.updated_at`;

export function createPostgresRegistryRows(options: PostgresRegistryRowsOptions): RegistryRows {
  const { target } = options.database;
  const clock = options.clock ?? systemClock;

  const query = <Row extends object>(action: string, sql: string, values: unknown[]) =>
    queryRows<Row>(options.database, action, sql, values);
  const transaction = <T>(action: string, work: (client: pg.PoolClient) => Promise<T>) =>
    inTransaction(options.database, action, work);

  function columnsOf(changes: Iterable<readonly [ChatId, RegistryEntry]>) {
    const columns = {
      chatIds: [] as string[],
      names: [] as string[],
      sessionIds: [] as (string | null)[],
      entries: [] as string[],
    };
    for (const [chatId, entry] of changes) {
      columns.chatIds.push(chatId);
      columns.names.push(entry.session_name);
      columns.sessionIds.push(entry.session_id);
      columns.entries.push(encodeEntry(entry));
    }
    return columns;
  }

  async function upsert(
    client: pg.PoolClient,
    rows: [ChatId, RegistryEntry][],
    onConflict: string,
  ) {
    const columns = columnsOf(rows);
    return client.query(UPSERT.replace("%s", onConflict), [
      columns.chatIds,
      columns.names,
      columns.sessionIds,
      columns.entries,
      Math.floor(clock.now()),
    ]);
  }

  return {
    location: target,

    async loadAll() {
      const rows = await query<{ chat_id: string; entry: string }>(
        "read the registry from",
        "SELECT chat_id, entry FROM registry",
        [],
      );
      const entries = new Map<ChatId, RegistryEntry>();
      for (const row of rows) {
        entries.set(row.chat_id as ChatId, decodeEntry(row.chat_id, row.entry, target));
      }
      return entries;
    },

    async loadOne(chatId) {
      const rows = await query<{ entry: string }>(
        "read the registry from",
        "SELECT entry FROM registry WHERE chat_id = $1",
        [chatId],
      );
      const row = rows[0];
      return row === undefined ? undefined : decodeEntry(chatId, row.entry, target);
    },

    async loadChangedSince(sinceMs) {
      const rows = await query<{ chat_id: string; entry: string }>(
        "read the registry from",
        "SELECT chat_id, entry FROM registry WHERE updated_at >= $1",
        [Math.floor(sinceMs)],
      );
      return new Map(
        rows.map((row) => [row.chat_id as ChatId, decodeEntry(row.chat_id, row.entry, target)]),
      );
    },

    async loadNamed(name) {
      const rows = await query<{ chat_id: string; entry: string }>(
        "read the registry from",
        "SELECT chat_id, entry FROM registry WHERE session_name = $1",
        [name],
      );
      return new Map(
        rows.map((row) => [row.chat_id as ChatId, decodeEntry(row.chat_id, row.entry, target)]),
      );
    },

    // A transaction-level advisory lock, held until `work` is done and the transaction ends:
    // released at commit, so it holds behind a transaction-mode pooler too. Rare (a new chat).
    withNameLock(work) {
      return transaction("lock the session names of", async (client) => {
        await client.query("SELECT pg_advisory_xact_lock($1)", [SESSION_NAMES_LOCK]);
        return work();
      });
    },

    async write(changes: readonly RegistryRowChange[], { durable }) {
      const removed: string[] = [];
      const kept: [ChatId, RegistryEntry][] = [];
      for (const [chatId, entry] of changes) {
        if (entry === undefined) removed.push(chatId);
        else kept.push([chatId, entry]);
      }
      if (removed.length === 0 && kept.length === 0) return;
      await transaction("write the registry to", async (client) => {
        if (!durable) await client.query("SET LOCAL synchronous_commit TO OFF");
        if (removed.length > 0) {
          await client.query("DELETE FROM registry WHERE chat_id = ANY($1::text[])", [removed]);
        }
        if (kept.length > 0) await upsert(client, kept, UPDATE_ROW);
      });
    },

    async importRecord() {
      const rows = await query<{ source: string; entries: number; imported_at: string }>(
        "read the registry from",
        "SELECT source, entries, imported_at FROM registry_import WHERE id = 1",
        [],
      );
      const row = rows[0];
      return row === undefined
        ? undefined
        : ({
            source: row.source,
            entries: row.entries,
            importedAt: Number(row.imported_at),
          } satisfies RegistryImportRecord);
    },

    importEntries(entries, source) {
      return transaction("write the registry to", async (client) => {
        const recorded = await client.query(
          `INSERT INTO registry_import (id, source, entries, imported_at) VALUES (1, $1, $2, $3)
           ON CONFLICT (id) DO NOTHING`,
          [source, entries.size, Math.floor(clock.now())],
        );
        if (recorded.rowCount === 0) return false;
        if (entries.size > 0) await upsert(client, [...entries], "NOTHING");
        return true;
      });
    },
  };
}
