/**
 * The chat-ownership port of a cluster (issue 14, `docs/cluster.md`): which node runs which
 * session, as rows. Two adapters: PostgreSQL (`postgres/postgres-chat-ownership.ts`), shared by
 * every node on one database, and an embedded one in memory (`memory-chat-ownership.ts`) for a
 * single node, which is then the only owner there is. `test/unit/store/chat-ownership-contract.ts`
 * runs the same cases against both.
 *
 * - **Nodes.** Each node keeps a row: where its HTTP API is, when it started, until when its
 *   heartbeat holds, its live-session slots (free and total), the channels it has (`imessage`
 *   runs on one Mac) and its state (`serving`, `draining`, `gone`).
 * - **Leases.** One row per session name (several chat ids can share a session, so the session is
 *   the key, not the chat). A lease has an owner node, an expiry, and a fencing epoch that grows
 *   with every new tenure: an acquire of a free, expired or released lease, or a node taking its
 *   own lease back after a restart. A renewal keeps the epoch. The row is never deleted, so an
 *   epoch never goes back.
 * - **Fencing.** `fencedWrite` runs a write only while the lease row still names this owner and
 *   this epoch, holding the row for the write's transaction: a node that lost its lease (paused,
 *   partitioned, or slow to notice) cannot write, whatever its clock says. The check is the epoch,
 *   not the expiry: past its expiry, the holder of the newest epoch may still write as long as no
 *   one has taken the lease, since no one else has written with a newer epoch.
 *
 * Times are integer epoch milliseconds from the adapter's clock. Node clocks may disagree by a
 * little: that moves when a lease is taken over, never whether a fenced write is safe.
 * Every method reports a failure as a rejected promise with a `DispatchError`; a write refused by
 * the fence has code `lease_lost`.
 */
import { DispatchError } from "../utils/errors.js";
import type { SessionName } from "../utils/ids.js";

/** A node's name in the cluster (`DISPATCH_NODE_ID`; default: host name and port). */
export type NodeId = string;

export const NODE_STATES = ["serving", "draining", "gone"] as const;
/**
 * `serving` takes new chats; `draining` keeps its chats but takes no new ones (a stop under way);
 * `gone` left gracefully, its leases released.
 */
export type NodeState = (typeof NODE_STATES)[number];

/** What a node says of itself at every heartbeat. */
export interface NodeReport {
  nodeId: NodeId;
  /** Where its HTTP API is: `http://10.0.0.5:7878`. */
  address: string;
  /** When this run of the node started. */
  startedAt: number;
  liveSlotsFree: number;
  liveSlotsTotal: number;
  /** The channels this node has, such as `http` and `imessage`. */
  channels: string[];
  state: NodeState;
}

/** A node's row: its last report and until when its heartbeat holds. */
export interface NodeRow extends NodeReport {
  heartbeatExpiresAt: number;
}

/** What a fenced write names: the tenure it was made under. */
export interface Fence {
  sessionName: SessionName;
  owner: NodeId;
  epoch: number;
}

export interface Lease extends Fence {
  expiresAt: number;
}

/** The outcome of an acquire: the new tenure, or the lease someone else still holds. */
export type AcquireResult = { acquired: true; lease: Lease } | { acquired: false; heldBy: Lease };

export interface ChatOwnership<Transaction = unknown> {
  /** Writes the node's row (inserted on its first heartbeat); it holds for `ttlMs` from now. */
  heartbeat(report: NodeReport, ttlMs: number): Promise<NodeRow>;
  /** Every node's row, gone ones included, by node id. */
  listNodes(): Promise<NodeRow[]>;
  /**
   * Takes the session's lease for `owner` for `leaseMs`, with a new epoch, when it is free,
   * released, expired, or already `owner`'s (a restarted node takes its own leases back at once,
   * fencing out its earlier run). Otherwise gives the lease that stands.
   */
  acquire(sessionName: SessionName, owner: NodeId, leaseMs: number): Promise<AcquireResult>;
  /**
   * Extends `owner`'s leases whose row still has the epoch given, to `leaseMs` from now, in one
   * round trip; returns those it extended. A lease left out lost its tenure (taken or released).
   */
  renew(owner: NodeId, held: readonly Fence[], leaseMs: number): Promise<Lease[]>;
  /** Hands the lease back at once, if it is still this tenure's; true when it was. */
  release(fence: Fence): Promise<boolean>;
  /**
   * A graceful stop: releases every lease of `owner` and marks its node row `gone`, in one
   * transaction; returns the session names it released.
   */
  leave(owner: NodeId): Promise<SessionName[]>;
  /** The session's lease, expired or not; undefined when no node holds it (never, or released). */
  leaseOf(sessionName: SessionName): Promise<Lease | undefined>;
  /** The leases `owner` holds (expired ones included, until someone takes them). */
  leasesOf(owner: NodeId): Promise<Lease[]>;
  /** Every lease some node holds (expired ones included), by session name. */
  listLeases(): Promise<Lease[]>;
  /** How many leases each node holds (expired ones included, until someone takes them). */
  leaseCounts(): Promise<Map<NodeId, number>>;
  /** Leases held by some node but past their expiry: the chats of a dead node, to take over. */
  expiredLeases(limit: number): Promise<Lease[]>;
  /**
   * Runs `write` in a transaction that holds the lease row, only while the row still names
   * `fence.owner` and `fence.epoch`; resolves with what `write` returns, once committed. Else
   * rejects with `DispatchError` code `lease_lost`, without calling `write`. A take-over waits for
   * a fenced write under way to commit or roll back; a rejection of `write` rolls it back.
   */
  fencedWrite<T>(fence: Fence, write: (transaction: Transaction) => Promise<T>): Promise<T>;
}

/** The error of a write or renewal refused because the tenure named is no longer the lease's. */
export function leaseLostError(fence: Fence, standing: Lease | undefined): DispatchError {
  const now = standing?.owner
    ? `it is now held by node \`${standing.owner}\` with epoch ${standing.epoch}`
    : "it is now free";
  return new DispatchError(
    "lease_lost",
    `Node \`${fence.owner}\` no longer holds the lease of session \`${fence.sessionName}\` ` +
      `with epoch ${fence.epoch}: ${now}. Stop the session on this node; the write was not made.`,
  );
}
