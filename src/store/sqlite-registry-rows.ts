/**
 * Registry rows (`registry-rows.ts`) in the SQLite state database, table `registry`. Synchronous
 * inside; the port's promises settle at once, a failure as a rejection naming the file.
 */
import { systemClock, type Clock } from "../utils/clock.js";
import type { ChatId } from "../utils/ids.js";
import type { RegistryEntry } from "./registry.js";
import {
  decodeEntry,
  encodeEntry,
  type RegistryImportRecord,
  type RegistryRowChange,
  type RegistryRows,
} from "./registry-rows.js";
import { journalError, type Database } from "./sqlite-database.js";
import { durableWrites } from "./sqlite-durability.js";

export interface SqliteRegistryRowsOptions {
  db: Database;
  clock?: Clock;
}

export function createSqliteRegistryRows(options: SqliteRegistryRowsOptions): RegistryRows {
  const { db } = options;
  const clock = options.clock ?? systemClock;
  const location = db.name;
  const settle = <T>(action: string, work: () => T): Promise<T> => {
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(journalError(error, location, action));
    }
  };
  const statements = (() => {
    try {
      return {
        all: db.prepare<[], { chat_id: string; entry: string }>(
          "SELECT chat_id, entry FROM registry",
        ),
        one: db.prepare<[string], string>("SELECT entry FROM registry WHERE chat_id = ?").pluck(),
        changedSince: db.prepare<[number], { chat_id: string; entry: string }>(
          "SELECT chat_id, entry FROM registry WHERE updated_at >= ?",
        ),
        named: db.prepare<[string], { chat_id: string; entry: string }>(
          "SELECT chat_id, entry FROM registry WHERE session_name = ?",
        ),
        upsert: db.prepare(
          `INSERT INTO registry (chat_id, session_name, session_id, entry, updated_at)
           VALUES (@chatId, @sessionName, @sessionId, @entry, @now)
           ON CONFLICT (chat_id) DO UPDATE SET session_name = excluded.session_name,
             session_id = excluded.session_id, entry = excluded.entry,
             updated_at = excluded.updated_at`,
        ),
        insertNew: db.prepare(
          `INSERT INTO registry (chat_id, session_name, session_id, entry, updated_at)
           VALUES (@chatId, @sessionName, @sessionId, @entry, @now)
           ON CONFLICT (chat_id) DO NOTHING`,
        ),
        remove: db.prepare("DELETE FROM registry WHERE chat_id = ?"),
        importRecord: db.prepare<[], { source: string; entries: number; imported_at: number }>(
          "SELECT source, entries, imported_at FROM registry_import WHERE id = 1",
        ),
        recordImport: db.prepare(
          `INSERT INTO registry_import (id, source, entries, imported_at)
           VALUES (1, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
        ),
      };
    } catch (error) {
      throw journalError(error, location, "prepare the registry's statements for");
    }
  })();
  const rowOf = (chatId: ChatId, entry: RegistryEntry, now: number) => ({
    chatId,
    sessionName: entry.session_name,
    sessionId: entry.session_id,
    entry: encodeEntry(entry),
    now,
  });
  const writeBatch = db.transaction((changes: readonly RegistryRowChange[]) => {
    const now = clock.now();
    for (const [chatId, entry] of changes) if (entry === undefined) statements.remove.run(chatId);
    for (const [chatId, entry] of changes) {
      if (entry !== undefined) statements.upsert.run(rowOf(chatId, entry, now));
    }
  });
  const importBatch = db.transaction(
    (entries: ReadonlyMap<ChatId, RegistryEntry>, source: string): boolean => {
      const now = clock.now();
      if (statements.recordImport.run(source, entries.size, now).changes === 0) return false;
      for (const [chatId, entry] of entries) statements.insertNew.run(rowOf(chatId, entry, now));
      return true;
    },
  );
  const durably = durableWrites(db);

  return {
    location,
    loadAll() {
      return settle("read the registry from", () => {
        const entries = new Map<ChatId, RegistryEntry>();
        for (const row of statements.all.iterate()) {
          entries.set(row.chat_id as ChatId, decodeEntry(row.chat_id, row.entry, location));
        }
        return entries;
      });
    },
    loadOne(chatId) {
      return settle("read the registry from", () => {
        const text = statements.one.get(chatId);
        return text === undefined ? undefined : decodeEntry(chatId, text, location);
      });
    },
    loadChangedSince(sinceMs) {
      return settle("read the registry from", () => {
        const entries = new Map<ChatId, RegistryEntry>();
        for (const row of statements.changedSince.iterate(sinceMs)) {
          entries.set(row.chat_id as ChatId, decodeEntry(row.chat_id, row.entry, location));
        }
        return entries;
      });
    },
    loadNamed(name) {
      return settle("read the registry from", () => {
        const entries = new Map<ChatId, RegistryEntry>();
        for (const row of statements.named.iterate(name)) {
          entries.set(row.chat_id as ChatId, decodeEntry(row.chat_id, row.entry, location));
        }
        return entries;
      });
    },
    withNameLock: (work) => work(),
    write(changes, { durable }) {
      return settle("write the registry to", () =>
        durable ? durably(() => writeBatch(changes)) : writeBatch(changes),
      );
    },
    importRecord() {
      return settle("read the registry from", (): RegistryImportRecord | undefined => {
        const row = statements.importRecord.get();
        return row === undefined
          ? undefined
          : { source: row.source, entries: row.entries, importedAt: row.imported_at };
      });
    },
    importEntries(entries, source) {
      return settle("write the registry to", () => durably(() => importBatch(entries, source)));
    },
  };
}
