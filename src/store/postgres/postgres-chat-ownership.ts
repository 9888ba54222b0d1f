/**
 * Chat ownership (`../chat-ownership.ts`) in PostgreSQL: `cluster_nodes` and `chat_leases`,
 * shared by every node on the database. Every change of a lease is one conditional statement (an
 * upsert or UPDATE whose WHERE holds the rule), so two nodes racing for one lease serialise on its
 * row and exactly one wins; no session-level advisory lock, which a transaction-mode pooler
 * (PgBouncer) would break. A fenced write is a transaction that first takes the lease row with
 * `SELECT ... FOR UPDATE` and checks its owner and epoch: a take-over waits for it, and a write
 * made under an older epoch is refused.
 */
import type pg from "pg";
import { systemClock, type Clock } from "../../utils/clock.js";
import { DispatchError } from "../../utils/errors.js";
import type { SessionName } from "../../utils/ids.js";
import { asSessionName } from "../../utils/ids.js";
import {
  leaseLostError,
  type AcquireResult,
  type ChatOwnership,
  type Fence,
  type Lease,
  type NodeId,
  type NodeReport,
  type NodeRow,
  type NodeState,
} from "../chat-ownership.js";
import { databaseError, queryRows, type PostgresDatabase } from "./postgres-database.js";

/** What a fenced write is given: its transaction's connection, to query through. */
export type PostgresTransaction = Pick<pg.PoolClient, "query">;

export interface PostgresChatOwnershipOptions {
  database: PostgresDatabase;
  clock?: Clock;
}

/** Tries of an acquire that keeps finding the lease released by the time it looks. */
const ACQUIRE_ATTEMPTS = 5;

const LEASE_COLUMNS = "session_name, owner_node, epoch, expires_at";

const HEARTBEAT = `
  INSERT INTO cluster_nodes AS node (node_id, address, started_at, heartbeat_expires_at,
    live_slots_free, live_slots_total, channels, state)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
  ON CONFLICT (node_id) DO UPDATE
    SET address = excluded.address, started_at = excluded.started_at,
        heartbeat_expires_at = excluded.heartbeat_expires_at,
        live_slots_free = excluded.live_slots_free, live_slots_total = excluded.live_slots_total,
        channels = excluded.channels, state = excluded.state
  RETURNING *`;

// $3 is now: a lease is free (no owner), released, expired, or the asker's own.
const ACQUIRE = `
  INSERT INTO chat_leases AS lease (session_name, owner_node, epoch, expires_at)
  VALUES ($1, $2, 1, $3::bigint + $4::bigint)
  ON CONFLICT (session_name) DO UPDATE
    SET owner_node = excluded.owner_node, epoch = lease.epoch + 1,
        expires_at = excluded.expires_at
    WHERE lease.owner_node IS NULL OR lease.owner_node = excluded.owner_node
       OR lease.expires_at <= $3
  RETURNING ${LEASE_COLUMNS}`;

const RENEW = `
  UPDATE chat_leases AS lease SET expires_at = $2
  FROM unnest($3::text[], $4::bigint[]) AS held (session_name, epoch)
  WHERE lease.session_name = held.session_name AND lease.epoch = held.epoch
    AND lease.owner_node = $1
  RETURNING lease.session_name, lease.owner_node, lease.epoch, lease.expires_at`;

const RELEASE = `
  UPDATE chat_leases SET owner_node = NULL, expires_at = 0
  WHERE session_name = $1 AND owner_node = $2 AND epoch = $3`;

// One statement: the leases and the node row change together or not at all.
const LEAVE = `
  WITH released AS (
    UPDATE chat_leases SET owner_node = NULL, expires_at = 0
    WHERE owner_node = $1 RETURNING session_name
  ), node AS (
    UPDATE cluster_nodes SET state = 'gone' WHERE node_id = $1
  )
  SELECT session_name FROM released ORDER BY session_name`;

interface LeaseRow {
  session_name: string;
  owner_node: string | null;
  epoch: string;
  expires_at: string;
}

interface NodeTableRow {
  node_id: string;
  address: string;
  started_at: string;
  heartbeat_expires_at: string;
  live_slots_free: number;
  live_slots_total: number;
  channels: string[];
  state: NodeState;
}

/** A held lease from its row (`owner_node` set). */
function leaseOfRow(row: LeaseRow): Lease {
  return {
    sessionName: asSessionName(row.session_name),
    owner: row.owner_node ?? "",
    epoch: Number(row.epoch),
    expiresAt: Number(row.expires_at),
  };
}

function nodeOfRow(row: NodeTableRow): NodeRow {
  return {
    nodeId: row.node_id,
    address: row.address,
    startedAt: Number(row.started_at),
    heartbeatExpiresAt: Number(row.heartbeat_expires_at),
    liveSlotsFree: row.live_slots_free,
    liveSlotsTotal: row.live_slots_total,
    channels: row.channels,
    state: row.state,
  };
}

export function createPostgresChatOwnership(
  options: PostgresChatOwnershipOptions,
): ChatOwnership<PostgresTransaction> {
  const { pool, target } = options.database;
  const clock = options.clock ?? systemClock;

  const query = <Row extends object>(action: string, sql: string, values: unknown[]) =>
    queryRows<Row>(options.database, action, sql, values);

  async function leaseOf(sessionName: SessionName): Promise<Lease | undefined> {
    const rows = await query<LeaseRow>(
      "read",
      `SELECT ${LEASE_COLUMNS} FROM chat_leases WHERE session_name = $1 AND owner_node IS NOT NULL`,
      [sessionName],
    );
    return rows[0] && leaseOfRow(rows[0]);
  }

  return {
    async heartbeat(report: NodeReport, ttlMs: number) {
      const rows = await query<NodeTableRow>("write to", HEARTBEAT, [
        report.nodeId,
        report.address,
        report.startedAt,
        clock.now() + ttlMs,
        report.liveSlotsFree,
        report.liveSlotsTotal,
        report.channels,
        report.state,
      ]);
      return nodeOfRow(rows[0]!);
    },

    async listNodes() {
      const rows = await query<NodeTableRow>(
        "read",
        "SELECT * FROM cluster_nodes ORDER BY node_id",
        [],
      );
      return rows.map(nodeOfRow);
    },

    async acquire(
      sessionName: SessionName,
      owner: NodeId,
      leaseMs: number,
    ): Promise<AcquireResult> {
      // A lease released between the two statements below is free again: ask again.
      for (let attempt = 1; ; attempt += 1) {
        const taken = await query<LeaseRow>("write to", ACQUIRE, [
          sessionName,
          owner,
          clock.now(),
          leaseMs,
        ]);
        if (taken[0]) return { acquired: true, lease: leaseOfRow(taken[0]) };
        const standing = await leaseOf(sessionName);
        if (standing) return { acquired: false, heldBy: standing };
        if (attempt === ACQUIRE_ATTEMPTS) {
          throw new DispatchError(
            "database_busy",
            `Could not acquire the lease of session \`${sessionName}\` in ${target}: it was ` +
              `taken and released ${ACQUIRE_ATTEMPTS} times while this node asked. Try again.`,
          );
        }
      }
    },

    async renew(owner: NodeId, held: readonly Fence[], leaseMs: number) {
      const mine = held.filter((fence) => fence.owner === owner);
      if (mine.length === 0) return [];
      const rows = await query<LeaseRow>("write to", RENEW, [
        owner,
        clock.now() + leaseMs,
        mine.map((fence) => fence.sessionName),
        mine.map((fence) => fence.epoch),
      ]);
      return rows.map(leaseOfRow).sort(bySessionName);
    },

    async release(fence: Fence) {
      try {
        const result = await pool.query(RELEASE, [fence.sessionName, fence.owner, fence.epoch]);
        return result.rowCount === 1;
      } catch (error) {
        throw databaseError(error, target, "write to");
      }
    },

    async leave(owner: NodeId) {
      const rows = await query<{ session_name: string }>("write to", LEAVE, [owner]);
      return rows.map((row) => asSessionName(row.session_name));
    },

    leaseOf,

    async leasesOf(owner: NodeId) {
      const rows = await query<LeaseRow>(
        "read",
        `SELECT ${LEASE_COLUMNS} FROM chat_leases WHERE owner_node = $1 ORDER BY session_name`,
        [owner],
      );
      return rows.map(leaseOfRow);
    },

    async listLeases() {
      const rows = await query<LeaseRow>(
        "read",
        `SELECT ${LEASE_COLUMNS} FROM chat_leases WHERE owner_node IS NOT NULL
         ORDER BY session_name`,
        [],
      );
      return rows.map(leaseOfRow);
    },

    async leaseCounts() {
      const rows = await query<{ owner_node: string; count: string }>(
        "read",
        `SELECT owner_node, count(*) AS count FROM chat_leases
         WHERE owner_node IS NOT NULL GROUP BY owner_node`,
        [],
      );
      return new Map(rows.map((row) => [row.owner_node, Number(row.count)]));
    },

    async expiredLeases(limit: number) {
      const rows = await query<LeaseRow>(
        "read",
        `SELECT ${LEASE_COLUMNS} FROM chat_leases
         WHERE owner_node IS NOT NULL AND expires_at <= $1
         ORDER BY expires_at, session_name LIMIT $2`,
        [clock.now(), limit],
      );
      return rows.map(leaseOfRow);
    },

    async fencedWrite<T>(
      fence: Fence,
      write: (transaction: PostgresTransaction) => Promise<T>,
    ): Promise<T> {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw databaseError(error, target, "write to");
      }
      let broken = false;
      let open = false;
      try {
        try {
          await client.query("BEGIN");
          open = true;
        } catch (error) {
          throw databaseError(error, target, "write to");
        }
        await holdFence(client, fence, target);
        const result = await write(client);
        try {
          await client.query("COMMIT");
          open = false;
        } catch (error) {
          throw databaseError(error, target, "write to");
        }
        return result;
      } catch (error) {
        if (open) {
          await client.query("ROLLBACK").catch(() => {
            broken = true;
          });
        }
        throw error;
      } finally {
        client.release(broken);
      }
    },
  };
}

/**
 * In a transaction: takes the lease row of `fence`'s session (`FOR UPDATE`, until the
 * transaction ends, so a take-over waits for the write) and checks it still names `fence`'s owner
 * and epoch; else throws `lease_lost`. The fence of `fencedWrite`, and of a write another adapter
 * makes in its own transaction (the journal's reply record).
 */
export async function holdFence(
  client: PostgresTransaction,
  fence: Fence,
  target: string,
): Promise<void> {
  let rows: LeaseRow[];
  try {
    rows = (
      await client.query<LeaseRow>(
        `SELECT ${LEASE_COLUMNS} FROM chat_leases WHERE session_name = $1 FOR UPDATE`,
        [fence.sessionName],
      )
    ).rows;
  } catch (error) {
    throw databaseError(error, target, "write to");
  }
  const row = rows[0];
  if (row?.owner_node !== fence.owner || Number(row.epoch) !== fence.epoch) {
    throw leaseLostError(fence, row?.owner_node ? leaseOfRow(row) : undefined);
  }
}

function bySessionName(a: Lease, b: Lease): number {
  return a.sessionName.localeCompare(b.sessionName);
}
