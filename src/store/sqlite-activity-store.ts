/**
 * The activity history (`activity-store.ts`) in the state database's `activity` table (schema
 * version 4). An append is one insert committed with `synchronous=NORMAL`: it survives a
 * `kill -9` of dispatch at once and costs no fsync (`sqlite-durability.ts`).
 */
import type { ActivityEvent, ActivityStore } from "./activity-store.js";
import { journalGuard, type Database } from "./sqlite-database.js";

interface ActivityRow {
  at: number;
  kind: ActivityEvent["kind"];
  chat_id: string | null;
  latency_ms: number | null;
  code: string | null;
  text: string | null;
}

export function createSqliteActivityStore(options: { db: Database }): ActivityStore {
  const { db } = options;
  const path = db.name;
  const guard = journalGuard(path);
  const statements = guard("prepare statements for", () => ({
    insert: db.prepare(
      `INSERT INTO activity (at, kind, chat_id, latency_ms, code, text)
       VALUES (@at, @kind, @chatId, @latencyMs, @code, @text)`,
    ),
    since: db.prepare<[number], ActivityRow>(
      `SELECT at, kind, chat_id, latency_ms, code, text FROM activity WHERE at >= ?
       ORDER BY at, id`,
    ),
    prune: db.prepare<[number]>(`DELETE FROM activity WHERE at < ?`),
  }));

  return {
    append(event) {
      guard("write to", () =>
        statements.insert.run({
          at: Math.round(event.atMs),
          kind: event.kind,
          chatId: event.chatId,
          latencyMs:
            event.kind === "reply" && event.latencyMs !== null ? Math.round(event.latencyMs) : null,
          code: event.kind === "error" ? event.code : null,
          text:
            event.kind === "error" ? event.message : event.kind === "restart" ? event.reason : null,
        }),
      );
    },
    since(sinceMs) {
      return guard("read", () => statements.since.all(Math.floor(sinceMs)).flatMap(toEvent));
    },
    prune(beforeMs) {
      return guard("prune", () => statements.prune.run(Math.floor(beforeMs)).changes);
    },
  };
}

/** A row as an event; a row that cannot be one (written by hand) is skipped. */
function toEvent(row: ActivityRow): ActivityEvent[] {
  switch (row.kind) {
    case "message":
      return row.chat_id === null ? [] : [{ kind: "message", atMs: row.at, chatId: row.chat_id }];
    case "reply":
      return row.chat_id === null
        ? []
        : [{ kind: "reply", atMs: row.at, chatId: row.chat_id, latencyMs: row.latency_ms }];
    case "error":
      return [
        {
          kind: "error",
          atMs: row.at,
          chatId: row.chat_id,
          code: row.code ?? "error",
          message: row.text ?? "",
        },
      ];
    case "restart":
      return [{ kind: "restart", atMs: row.at, chatId: row.chat_id, reason: row.text ?? "" }];
    default:
      return [];
  }
}
