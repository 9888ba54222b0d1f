/**
 * Read-only access to the Messages database: new `message` rows after a ROWID, where to start
 * (from a cursor, from now, or after a replaced database), and chat lookups for replies.
 */
import { statSync } from "node:fs";
import Database from "better-sqlite3";
import { DispatchError, describeError } from "../../utils/errors.js";
import type { Logger } from "../../logging/logger.js";
import { APPLE_EPOCH_MS, type ChatDbRow, type ChatRoute } from "./chat-db-row.js";
import { parseCursor } from "./cursor.js";

export interface ChatDbReader {
  /** The identity of the file opened (inode and birth time): it changes when chat.db is replaced. */
  readonly dbId: string;
  /** The highest ROWID `message` has ever used; deleting the newest rows does not lower it. */
  lastRowId(): number;
  /** The ROWID to read after so that every row dated within `maxAgeMs` of `nowMs` is read. */
  windowStart(nowMs: number, maxAgeMs: number): number;
  /** Up to `limit` rows with ROWID above `rowId`, in ROWID order. */
  readAfter(rowId: number, limit: number): ChatDbRow[];
  /** Where replies to `chatId` go, from the `chat` table; `undefined` when no chat matches. */
  findChat(chatId: string): ChatRoute | undefined;
  /** Whether `dbPath` is still the file opened. Throws when it cannot be checked (gone, no access). */
  isCurrentFile(): boolean;
  close(): void;
}

export interface OpenChatDbOptions {
  dbPath: string;
  /** How long one query waits for a lock before failing (it is retried on the next poll). */
  busyTimeoutMs?: number;
}

const REQUIRED_COLUMNS: Record<string, readonly string[]> = {
  message: ["guid", "text", "handle_id", "date", "is_from_me"],
  chat: ["guid", "chat_identifier", "style"],
  chat_message_join: ["chat_id", "message_id"],
  handle: ["id"],
};
/** Columns some macOS versions lack; selected as NULL there. */
const OPTIONAL_MESSAGE_COLUMNS = {
  attributedBody: "attributedBody",
  associatedMessageType: "associated_message_type",
  itemType: "item_type",
  isSpam: "is_spam",
} as const;
const SECONDS_FORMAT_LIMIT = 100_000_000_000;
const GROUP_STYLE = 43;

/** The identity of the file at `dbPath`: inode and birth time (0 where the system has none). */
export function fileIdentity(dbPath: string): string {
  const stats = statSync(dbPath, { bigint: true });
  return `${stats.ino}-${stats.birthtimeNs}`;
}

/**
 * Opens chat.db read-only. Throws a DispatchError `imessage_unavailable` that says how to fix it
 * when the file is missing, unreadable (no Full Disk Access) or not a Messages database.
 */
export function openChatDbReader(options: OpenChatDbOptions): ChatDbReader {
  const { dbPath } = options;
  let db: Database.Database;
  let dbId: string;
  try {
    dbId = fileIdentity(dbPath);
    db = new Database(dbPath, {
      readonly: true,
      fileMustExist: true,
      timeout: options.busyTimeoutMs ?? 100,
    });
  } catch (error) {
    throw unavailable(dbPath, error);
  }
  try {
    return createReader(db, dbId, dbPath);
  } catch (error) {
    db.close();
    throw error instanceof DispatchError ? error : unavailable(dbPath, error);
  }
}

function createReader(db: Database.Database, dbId: string, dbPath: string): ChatDbReader {
  const columns = (table: string) =>
    new Set((db.pragma(`table_info(${table})`) as { name: string }[]).map((column) => column.name));
  const tables = new Set(
    db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
      .all()
      .map((row) => row.name),
  );
  for (const [table, required] of Object.entries(REQUIRED_COLUMNS)) {
    const present = columns(table);
    const missing = required.filter((column) => !present.has(column));
    if (missing.length > 0) {
      throw new DispatchError(
        "imessage_unavailable",
        `[imessage] ${dbPath} is not a Messages database dispatch can read: table \`${table}\` ` +
          `lacks ${missing.map((name) => `\`${name}\``).join(", ")}. Check ` +
          "`channels.imessage.dbPath`, or set `channels.imessage.enabled` to false.",
      );
    }
  }
  const messageColumns = columns("message");
  const chatColumns = columns("chat");
  const optional = Object.entries(OPTIONAL_MESSAGE_COLUMNS)
    .map(([alias, column]) => `${messageColumns.has(column) ? `m.${column}` : "NULL"} AS ${alias}`)
    .join(", ");
  const displayName = chatColumns.has("display_name") ? "c.display_name" : "NULL";
  const attachments =
    tables.has("attachment") && tables.has("message_attachment_join")
      ? `(SELECT json_group_array(name) FROM (SELECT COALESCE(NULLIF(a.transfer_name, ''),
           NULLIF(a.filename, ''), a.mime_type, 'file') AS name
           FROM message_attachment_join maj JOIN attachment a ON a.ROWID = maj.attachment_id
           WHERE maj.message_id = m.ROWID ORDER BY maj.rowid))`
      : "NULL";

  const rowsAfter = db.prepare<[number, number], ChatDbRow>(
    `SELECT m.ROWID AS rowId, m.guid AS guid, m.text AS text, m.date AS date,
       m.is_from_me AS isFromMe, ${optional},
       h.id AS handle, c.guid AS chatGuid, c.chat_identifier AS chatIdentifier,
       c.style AS chatStyle, ${displayName} AS chatDisplayName,
       ${attachments} AS attachmentNames
     FROM message m
     LEFT JOIN chat c ON c.ROWID = (SELECT cmj.chat_id FROM chat_message_join cmj
       WHERE cmj.message_id = m.ROWID ORDER BY cmj.chat_id LIMIT 1)
     LEFT JOIN handle h ON h.ROWID = m.handle_id
     WHERE m.ROWID > ? ORDER BY m.ROWID LIMIT ?`,
  );
  const sequence = tables.has("sqlite_sequence")
    ? "(SELECT seq FROM sqlite_sequence WHERE name = 'message')"
    : "0";
  const lastRow = db.prepare<[], { last: number | null }>(
    `SELECT MAX(COALESCE(${sequence}, 0), COALESCE((SELECT MAX(ROWID) FROM message), 0)) AS last`,
  );
  const firstInWindow = db.prepare<
    { boundNs: bigint; boundSeconds: number; secondsLimit: number },
    { first: number | null }
  >(
    `SELECT MIN(ROWID) AS first FROM message WHERE date >= @boundNs
       OR (date > 0 AND date < @secondsLimit AND date >= @boundSeconds)`,
  );
  const chatById = db.prepare<[string], { guid: string; style: number | null }>(
    `SELECT guid, style FROM chat WHERE chat_identifier = ? COLLATE NOCASE
     ORDER BY (style = ${GROUP_STYLE}) DESC, ROWID DESC LIMIT 1`,
  );

  const lastRowId = () => lastRow.get()?.last ?? 0;
  return {
    dbId,
    lastRowId,
    windowStart(nowMs, maxAgeMs) {
      if (maxAgeMs <= 0) return lastRowId();
      const boundSinceEpochMs = nowMs - maxAgeMs - APPLE_EPOCH_MS;
      const first = firstInWindow.get({
        boundNs: BigInt(Math.floor(boundSinceEpochMs)) * 1_000_000n,
        boundSeconds: Math.floor(boundSinceEpochMs / 1000),
        secondsLimit: SECONDS_FORMAT_LIMIT,
      })?.first;
      return first == null ? lastRowId() : first - 1;
    },
    readAfter: (rowId, limit) => rowsAfter.all(rowId, limit),
    findChat(chatId) {
      const chat = chatById.get(chatId);
      if (!chat) return undefined;
      return chat.style === GROUP_STYLE
        ? { chatId, kind: "chat", recipient: chat.guid }
        : { chatId, kind: "buddy", recipient: chatId };
    },
    isCurrentFile: () => fileIdentity(dbPath) === dbId,
    close: () => db.close(),
  };
}

export interface StartPosition {
  rowId: number;
  /** `cursor`: resumed; `first-run`: no cursor, starts now; the rest recover from the window. */
  reason: "cursor" | "first-run" | "replaced" | "unreadable-cursor";
}

/**
 * Where to start reading. With no cursor: after the newest row (now), never the whole history.
 * With a cursor from this file: after its ROWID. With a cursor from another file, or one past
 * the newest ROWID (the database was replaced), or one that cannot be read: after the last row
 * dated before the backfill bound, so nothing old is replayed and nothing recent is missed.
 */
export function resolveStart(
  reader: ChatDbReader,
  cursorText: string | undefined,
  options: { nowMs: number; maxBackfillAgeMs: number; logger: Logger },
): StartPosition {
  const { logger } = options;
  const fromWindow = (reason: StartPosition["reason"]): StartPosition => ({
    rowId: reader.windowStart(options.nowMs, options.maxBackfillAgeMs),
    reason,
  });
  if (cursorText === undefined) {
    const rowId = reader.lastRowId();
    logger.info("imessage-cursor-start", { rowId, reason: "first-run" });
    return { rowId, reason: "first-run" };
  }
  const cursor = parseCursor(cursorText);
  if (!cursor) {
    const start = fromWindow("unreadable-cursor");
    logger.warn("imessage-cursor-unreadable", { cursor: cursorText, rowId: start.rowId });
    return start;
  }
  const lastRowId = reader.lastRowId();
  if (cursor.dbId !== reader.dbId || lastRowId < cursor.rowId) {
    const start = fromWindow("replaced");
    logger.warn("imessage-database-replaced", {
      cursorRowId: cursor.rowId,
      cursorDbId: cursor.dbId,
      dbId: reader.dbId,
      lastRowId,
      rowId: start.rowId,
    });
    return start;
  }
  return { rowId: cursor.rowId, reason: "cursor" };
}

function unavailable(dbPath: string, error: unknown): DispatchError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === "ENOENT") {
    return new DispatchError(
      "imessage_unavailable",
      `[imessage] There is no Messages database at ${dbPath}. Sign in to Messages on this Mac, ` +
        "or set `channels.imessage.dbPath` in config.json, or set `channels.imessage.enabled` " +
        "to false to run without iMessage.",
      { cause: error },
    );
  }
  if (code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT") {
    return new DispatchError(
      "imessage_unavailable",
      `[imessage] ${dbPath} is not a readable SQLite database (${code}). Check ` +
        "`channels.imessage.dbPath` (the default is ~/Library/Messages/chat.db), or set " +
        "`channels.imessage.enabled` to false to run without iMessage.",
      { cause: error },
    );
  }
  return new DispatchError(
    "imessage_unavailable",
    `[imessage] Cannot read the Messages database ${dbPath} (${code ?? describeError(error)}). ` +
      "Give Full Disk Access to the program running dispatch (your terminal, or node when it " +
      "runs as a service) in System Settings → Privacy & Security → Full Disk Access, then " +
      "restart it; or set `channels.imessage.enabled` to false to run without iMessage.",
    { cause: error },
  );
}
