import { z } from "zod";

/**
 * Where the iMessage channel has read up to, saved by the daemon with each recorded message:
 * the last `message` ROWID handled and the identity of the database file it belongs to, so a
 * replaced chat.db (a restore, a new Mac) is noticed rather than read from a stale ROWID.
 */
export interface ImessageCursor {
  rowId: number;
  dbId: string;
}

const cursorSchema = z.object({
  rowId: z.number().int().nonnegative(),
  dbId: z.string().min(1),
});

/** `{"rowId":123,"dbId":"..."}`: the string the journal keeps. */
export function formatCursor(cursor: ImessageCursor): string {
  return JSON.stringify({ rowId: cursor.rowId, dbId: cursor.dbId });
}

/** The cursor in `text`; `undefined` when it is not one this channel wrote. */
export function parseCursor(text: string): ImessageCursor | undefined {
  try {
    const parsed = cursorSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
