/**
 * The journal's way in, in PostgreSQL: messages recorded (deduplicated by channel and external
 * id, in one transaction with their channel's cursor), their states up to delivered or rejected,
 * replay attempts, and the cursors of polling channels. Part of `postgres-journal.ts`.
 *
 * Deduplication holds across processes: the insert is `ON CONFLICT DO NOTHING` on the unique
 * (channel, external id); a second process inserting the same message waits for the first's
 * transaction, inserts nothing, and reads the first's row.
 */
import { randomUUID } from "node:crypto";
import type { InboundStatus, RecordInboundResult } from "../journal.js";
import {
  checkInbound,
  duplicateResult,
  toInboundRow,
  unknownInbound,
  type InboundRecord,
} from "../journal-rows.js";
import type { JournalInbox } from "../sqlite-journal-inbox.js";
import {
  fromInbound,
  INBOUND_COLUMNS,
  type PostgresJournalContext,
} from "./postgres-journal-context.js";

const UPSERT_CURSOR = `
  INSERT INTO cursors (channel, value, updated_at) VALUES ($1, $2, $3)
  ON CONFLICT (channel) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`;

const INSERT = `
  INSERT INTO inbound (uuid, channel, external_id, chat_id, sender, group_name, text,
    received_at, status, attempts, created_at, updated_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'received', 0, $9, $9)
  ON CONFLICT (channel, external_id) DO NOTHING
  RETURNING id`;

const BY_EXTERNAL_ID = `SELECT ${INBOUND_COLUMNS} FROM inbound WHERE channel = $1 AND external_id = $2`;

const REPLY_OF = `SELECT text FROM outbox WHERE inbound_id = $1 ORDER BY part`;

const ANSWERS_TO = `
  SELECT inbound.id, inbound.chat_id, inbound.status, inbound.error_code, inbound.error_message,
    CASE WHEN inbound.status = 'answered' THEN array(
      SELECT outbox.text FROM outbox
      WHERE outbox.inbound_id = coalesce(inbound.answered_by, inbound.id) ORDER BY outbox.part)
    ELSE '{}'::text[] END AS reply
  FROM inbound WHERE inbound.id = ANY($1::bigint[]) ORDER BY inbound.id`;

/**
 * An update of one row that tells a row that did not change (its state forbids it) from one that
 * is not there: `found` is 0 only for an unknown id.
 */
const updateOne = (set: string, condition: string) => `
  WITH changed AS (
    UPDATE inbound SET ${set} WHERE id = $1 ${condition} RETURNING id
  )
  SELECT count(*) AS found FROM inbound WHERE id = $1`;

const DELIVER = updateOne(`status = 'delivered', updated_at = $2`, `AND status = 'received'`);
const REJECT = updateOne(
  `status = 'rejected', error_code = $3, error_message = $4, updated_at = $2`,
  `AND status IN ('received', 'delivered')`,
);
const ENVELOPE_NONCE = updateOne(`envelope_nonce = $3, updated_at = $2`, ``);
const ATTEMPT = `
  UPDATE inbound SET attempts = attempts + 1, updated_at = $2 WHERE id = $1 RETURNING attempts`;

const PENDING = `
  SELECT ${INBOUND_COLUMNS} FROM inbound WHERE status IN ('received', 'delivered') ORDER BY id`;
const PENDING_OF_CHAT = `
  SELECT ${INBOUND_COLUMNS} FROM inbound
  WHERE status IN ('received', 'delivered') AND chat_id = $1 ORDER BY id`;

export function createPostgresJournalInbox(context: PostgresJournalContext): JournalInbox {
  const { clock, target, query, transaction } = context;

  const update = async (sql: string, id: number, ...values: unknown[]): Promise<void> => {
    const [row] = await query<{ found: string }>("write to", sql, [id, clock.now(), ...values]);
    if (Number(row?.found ?? 0) === 0) throw unknownInbound(id, target);
  };

  return {
    async recordInbound(message, options = {}) {
      checkInbound(message);
      const { cursor } = options;
      return transaction("write to", async (client): Promise<RecordInboundResult> => {
        const now = clock.now();
        // The cursor first: should the insert fail, the rollback must undo the cursor too.
        if (cursor !== undefined) await client.query(UPSERT_CURSOR, [message.channel, cursor, now]);
        const uuid = randomUUID();
        const inserted = await client.query<{ id: string }>(INSERT, [
          uuid,
          message.channel,
          message.externalId ?? null,
          message.chatId,
          message.sender ?? null,
          message.groupName ?? null,
          message.text,
          message.receivedAt.getTime(),
          now,
        ]);
        const [row] = inserted.rows;
        if (row !== undefined) {
          return { id: Number(row.id), uuid, duplicate: false, status: "received" };
        }
        // Read committed: this statement sees the row whose insert this one waited for.
        const existing = await client.query<InboundRecord>(BY_EXTERNAL_ID, [
          message.channel,
          message.externalId,
        ]);
        const first = fromInbound(existing.rows[0]!);
        const reply =
          first.status === "answered"
            ? (
                await client.query<{ text: string }>(REPLY_OF, [first.answered_by ?? first.id])
              ).rows.map((part) => part.text)
            : undefined;
        return duplicateResult(first, reply);
      });
    },
    markDelivered: (id) => update(DELIVER, id),
    markRejected: (id, code, message) => update(REJECT, id, code, message),
    recordEnvelopeNonce: (id, nonce) => update(ENVELOPE_NONCE, id, nonce),
    async recordAttempt(id) {
      const [row] = await query<{ attempts: number }>("write to", ATTEMPT, [id, clock.now()]);
      if (row === undefined) throw unknownInbound(id, target);
      return row.attempts;
    },
    async pendingInbound(options = {}) {
      const rows =
        options.chatId === undefined
          ? await query<InboundRecord>("read", PENDING, [])
          : await query<InboundRecord>("read", PENDING_OF_CHAT, [options.chatId]);
      return rows.map((row) => toInboundRow(fromInbound(row)));
    },
    async findByExternalId(channel, externalId) {
      const [row] = await query<InboundRecord>("read", BY_EXTERNAL_ID, [channel, externalId]);
      return row === undefined ? undefined : toInboundRow(fromInbound(row));
    },
    async answersTo(inboundIds) {
      if (inboundIds.length === 0) return [];
      const rows = await query<{
        id: string;
        chat_id: string;
        status: InboundStatus;
        error_code: string | null;
        error_message: string | null;
        reply: string[];
      }>("read", ANSWERS_TO, [[...inboundIds]]);
      return rows.map((row) => ({
        id: Number(row.id),
        chatId: row.chat_id,
        status: row.status,
        reply: row.reply,
        ...(row.status === "answered" && row.error_code === "agent_error"
          ? { failure: row.error_message ?? "no detail given" }
          : {}),
      }));
    },
    async cursor(channel) {
      const [row] = await query<{ value: string }>(
        "read",
        `SELECT value FROM cursors WHERE channel = $1`,
        [channel],
      );
      return row?.value;
    },
    async setCursor(channel, value) {
      await query("write to", UPSERT_CURSOR, [channel, value, clock.now()]);
    },
  };
}
