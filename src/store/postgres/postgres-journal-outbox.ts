/**
 * The journal's way out, in PostgreSQL: a turn's reply answers its messages and is recorded part
 * by part in one transaction; each part then moves to sent, failed or abandoned. Part of
 * `postgres-journal.ts`.
 *
 * A message is answered once even when two nodes answer it at once: `markAnswered` locks the
 * messages it answers (in id order, so two turns never wait on each other in a cycle), and the
 * second finds them answered and fails with `journal_conflict`, recording nothing.
 */
import {
  answeredTwice,
  checkAnswered,
  toOutboxRow,
  unknownInbound,
  unknownOutbox,
  type OutboxRecord,
} from "../journal-rows.js";
import type { InboundStatus, OutboxRow, ReplyEvent } from "../journal.js";
import { AGENT_ERROR, type JournalOutbox } from "../sqlite-journal-outbox.js";
import { holdFence } from "./postgres-chat-ownership.js";
import { fromOutbox, type PostgresJournalContext } from "./postgres-journal-context.js";

const LOCK = `SELECT id, status FROM inbound WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE`;
const ANSWER = `
  UPDATE inbound SET status = 'answered', answered_by = $2, updated_at = $3,
    error_code = $4, error_message = $5
  WHERE id = ANY($1::bigint[])`;
const INSERT_PARTS = `
  INSERT INTO outbox (inbound_id, part, channel, chat_id, text, status, attempts, created_at)
  SELECT $1, parts.position - 1, $2, $3, parts.text, 'pending', 0, $4
  FROM unnest($5::text[]) WITH ORDINALITY AS parts (text, position)`;
const OUTBOX_OF = `SELECT * FROM outbox WHERE inbound_id = $1 ORDER BY part`;

/** As in `postgres-journal-inbox.ts`: `found` is 0 only for a part that is not there. */
const updateOne = (set: string) => `
  WITH changed AS (
    UPDATE outbox SET ${set}
    WHERE inbound_id = $1 AND part = $2 AND status IN ('pending', 'failed') RETURNING part
  )
  SELECT count(*) AS found FROM outbox WHERE inbound_id = $1 AND part = $2`;

const SENT = updateOne(`status = 'sent', attempts = attempts + 1, error = NULL, sent_at = $3`);
const SEND_FAILED = updateOne(`status = 'failed', attempts = attempts + 1, error = $3`);
const ABANDON = updateOne(`status = 'abandoned', error = $3`);
const UNSENT = `
  SELECT * FROM outbox WHERE status IN ('pending', 'failed') ORDER BY inbound_id, part`;

/** Reply parts as a client sees them: with their reply's part count and the ids it answers. */
const REPLY_EVENTS = `
  SELECT outbox.id, outbox.inbound_id, outbox.part, outbox.chat_id, outbox.text,
    outbox.created_at,
    (SELECT count(*) FROM outbox AS sibling WHERE sibling.inbound_id = outbox.inbound_id)
      AS parts,
    array(SELECT coalesce(inbound.external_id, inbound.uuid) FROM inbound
      WHERE inbound.answered_by = outbox.inbound_id ORDER BY inbound.id) AS message_ids
  FROM outbox`;
const REPLY_EVENTS_AFTER = `${REPLY_EVENTS}
  WHERE outbox.channel = $1 AND outbox.id > $2 ORDER BY outbox.id LIMIT $3`;
const REPLY_EVENT = `${REPLY_EVENTS} WHERE outbox.id = $1`;
const LAST_REPLY_EVENT_ID = `SELECT max(id) AS id FROM outbox WHERE channel = $1`;

interface ReplyEventRecord {
  id: string;
  inbound_id: string;
  part: number;
  chat_id: string;
  text: string;
  created_at: string;
  parts: string;
  message_ids: string[];
}

function toReplyEvent(row: ReplyEventRecord): ReplyEvent {
  return {
    id: Number(row.id),
    inboundId: Number(row.inbound_id),
    part: row.part,
    parts: Number(row.parts),
    chatId: row.chat_id,
    text: row.text,
    messageIds: row.message_ids,
    createdAt: new Date(Number(row.created_at)),
  };
}

export function createPostgresJournalOutbox(context: PostgresJournalContext): JournalOutbox {
  const { clock, target, query, transaction } = context;

  const update = async (sql: string, inboundId: number, part: number, value: unknown) => {
    const [row] = await query<{ found: string }>("write to", sql, [inboundId, part, value]);
    if (Number(row?.found ?? 0) === 0) throw unknownOutbox(inboundId, part, target);
  };

  return {
    async markAnswered(inboundIds, reply, options = {}) {
      checkAnswered(inboundIds);
      const ids = [...new Set(inboundIds)];
      const answeredBy = inboundIds.at(-1)!;
      return transaction("write to", async (client): Promise<OutboxRow[]> => {
        // First: a node whose lease was taken over records nothing (`holdFence`).
        if (options.fence) await holdFence(client, options.fence, target);
        const now = clock.now();
        const locked = await client.query<{ id: string; status: InboundStatus }>(LOCK, [ids]);
        const statuses = new Map(locked.rows.map((row) => [Number(row.id), row.status]));
        for (const id of ids) {
          const status = statuses.get(id);
          if (status === undefined) throw unknownInbound(id, target);
          if (status === "answered" || status === "rejected") {
            throw answeredTwice(id, status, target);
          }
        }
        await client.query(ANSWER, [
          ids,
          answeredBy,
          now,
          reply.failure === undefined ? null : AGENT_ERROR,
          reply.failure ?? null,
        ]);
        await client.query(INSERT_PARTS, [
          answeredBy,
          reply.channel,
          reply.chatId,
          now,
          reply.parts,
        ]);
        const rows = await client.query<OutboxRecord>(OUTBOX_OF, [answeredBy]);
        return rows.rows.map((row) => toOutboxRow(fromOutbox(row)));
      });
    },
    markSent: (inboundId, part) => update(SENT, inboundId, part, clock.now()),
    markSendFailed: (inboundId, part, error) => update(SEND_FAILED, inboundId, part, error),
    abandon: (inboundId, part, reason) => update(ABANDON, inboundId, part, reason),
    async unsentOutbox() {
      const rows = await query<OutboxRecord>("read", UNSENT, []);
      return rows.map((row) => toOutboxRow(fromOutbox(row)));
    },
    async replyEventsAfter(channel, afterId, limit) {
      const rows = await query<ReplyEventRecord>("read", REPLY_EVENTS_AFTER, [
        channel,
        afterId,
        limit,
      ]);
      return rows.map(toReplyEvent);
    },
    async replyEvent(outboxId) {
      const [row] = await query<ReplyEventRecord>("read", REPLY_EVENT, [outboxId]);
      return row === undefined ? undefined : toReplyEvent(row);
    },
    async lastReplyEventId(channel) {
      const [row] = await query<{ id: string | null }>("read", LAST_REPLY_EVENT_ID, [channel]);
      return row?.id === null || row?.id === undefined ? 0 : Number(row.id);
    },
  };
}
