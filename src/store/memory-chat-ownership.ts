/**
 * Chat ownership (`./chat-ownership.ts`) in memory: the embedded adapter, for a daemon that runs
 * alone. It keeps the same rules as the PostgreSQL adapter, so a single node acquires every lease
 * it asks for (no one else holds any) and the session manager can be written once for both. Its
 * rows live as long as the process: a restart starts with no leases, which on one node is right.
 *
 * Several adapters may share one `MemoryOwnershipRows` (the contract suite's second "node"). A
 * fenced write holds its session's row until it settles: an acquire or release of that session
 * waits for it, as a PostgreSQL row lock makes them wait.
 */
import { systemClock, type Clock } from "../utils/clock.js";
import type { SessionName } from "../utils/ids.js";
import {
  leaseLostError,
  type AcquireResult,
  type ChatOwnership,
  type Fence,
  type Lease,
  type NodeId,
  type NodeReport,
  type NodeRow,
} from "./chat-ownership.js";

/** The rows of one embedded "database". */
export interface MemoryOwnershipRows {
  nodes: Map<NodeId, NodeRow>;
  leases: Map<SessionName, Lease>;
  /** The settle of the last fenced write, acquire or release of each session. */
  rowLocks: Map<SessionName, Promise<unknown>>;
}

export function createMemoryOwnershipRows(): MemoryOwnershipRows {
  return { nodes: new Map(), leases: new Map(), rowLocks: new Map() };
}

export interface MemoryChatOwnershipOptions {
  /** Shared with other adapters to play several nodes; default: rows of its own. */
  rows?: MemoryOwnershipRows;
  clock?: Clock;
}

/** A released lease keeps its row (and epoch) with no owner. */
const FREE_OWNER = "";

export function createMemoryChatOwnership(
  options: MemoryChatOwnershipOptions = {},
): ChatOwnership<undefined> {
  const rows = options.rows ?? createMemoryOwnershipRows();
  const clock = options.clock ?? systemClock;
  const copy = (lease: Lease): Lease => ({ ...lease });

  /** Runs `action` once the session's earlier row work has settled, as a row lock would. */
  function withRow<T>(sessionName: SessionName, action: () => Promise<T> | T): Promise<T> {
    const before = rows.rowLocks.get(sessionName) ?? Promise.resolve();
    const result = before.then(action, action);
    const settled = result.catch(() => undefined);
    rows.rowLocks.set(sessionName, settled);
    void settled.then(() => {
      if (rows.rowLocks.get(sessionName) === settled) rows.rowLocks.delete(sessionName);
    });
    return result;
  }

  const isTenure = (lease: Lease, fence: Fence): boolean =>
    lease.owner === fence.owner && lease.epoch === fence.epoch;

  function release(fence: Fence): Promise<boolean> {
    return withRow(fence.sessionName, () => {
      const lease = rows.leases.get(fence.sessionName);
      if (!lease || !isTenure(lease, fence)) return false;
      rows.leases.set(lease.sessionName, { ...lease, owner: FREE_OWNER, expiresAt: 0 });
      return true;
    });
  }

  return {
    heartbeat(report: NodeReport, ttlMs: number) {
      const row: NodeRow = {
        ...report,
        channels: [...report.channels],
        heartbeatExpiresAt: clock.now() + ttlMs,
      };
      rows.nodes.set(report.nodeId, row);
      return Promise.resolve({ ...row, channels: [...row.channels] });
    },

    listNodes() {
      const nodes = [...rows.nodes.values()].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
      return Promise.resolve(nodes.map((node) => ({ ...node, channels: [...node.channels] })));
    },

    acquire(sessionName: SessionName, owner: NodeId, leaseMs: number): Promise<AcquireResult> {
      return withRow(sessionName, () => {
        const now = clock.now();
        const standing = rows.leases.get(sessionName);
        if (
          standing &&
          standing.owner !== FREE_OWNER &&
          standing.owner !== owner &&
          standing.expiresAt > now
        ) {
          return { acquired: false, heldBy: copy(standing) };
        }
        const lease: Lease = {
          sessionName,
          owner,
          epoch: (standing?.epoch ?? 0) + 1,
          expiresAt: now + leaseMs,
        };
        rows.leases.set(sessionName, lease);
        return { acquired: true, lease: copy(lease) };
      });
    },

    renew(owner: NodeId, held: readonly Fence[], leaseMs: number) {
      const expiresAt = clock.now() + leaseMs;
      const renewed: Lease[] = [];
      for (const fence of held) {
        const lease = rows.leases.get(fence.sessionName);
        if (!lease || fence.owner !== owner || !isTenure(lease, fence)) continue;
        lease.expiresAt = expiresAt;
        renewed.push(copy(lease));
      }
      return Promise.resolve(renewed);
    },

    release,

    async leave(owner: NodeId) {
      const released: SessionName[] = [];
      for (const lease of [...rows.leases.values()]) {
        if (lease.owner !== owner) continue;
        if (await release(lease)) released.push(lease.sessionName);
      }
      const node = rows.nodes.get(owner);
      if (node) node.state = "gone";
      return released.sort();
    },

    leaseOf(sessionName: SessionName) {
      const lease = rows.leases.get(sessionName);
      return Promise.resolve(lease && lease.owner !== FREE_OWNER ? copy(lease) : undefined);
    },

    leasesOf(owner: NodeId) {
      const held = [...rows.leases.values()].filter((lease) => lease.owner === owner);
      return Promise.resolve(held.map(copy).sort(bySessionName));
    },

    listLeases() {
      const held = [...rows.leases.values()].filter((lease) => lease.owner !== FREE_OWNER);
      return Promise.resolve(held.map(copy).sort(bySessionName));
    },

    leaseCounts() {
      const counts = new Map<NodeId, number>();
      for (const lease of rows.leases.values()) {
        if (lease.owner !== FREE_OWNER) counts.set(lease.owner, (counts.get(lease.owner) ?? 0) + 1);
      }
      return Promise.resolve(counts);
    },

    expiredLeases(limit: number) {
      const now = clock.now();
      const expired = [...rows.leases.values()]
        .filter((lease) => lease.owner !== FREE_OWNER && lease.expiresAt <= now)
        .sort((a, b) => a.expiresAt - b.expiresAt || bySessionName(a, b));
      return Promise.resolve(expired.slice(0, limit).map(copy));
    },

    fencedWrite<T>(fence: Fence, write: (transaction: undefined) => Promise<T>): Promise<T> {
      return withRow(fence.sessionName, () => {
        const lease = rows.leases.get(fence.sessionName);
        if (!lease || !isTenure(lease, fence)) {
          throw leaseLostError(fence, lease?.owner === FREE_OWNER ? undefined : lease);
        }
        return write(undefined);
      });
    },
  };
}

function bySessionName(a: Lease, b: Lease): number {
  return a.sessionName.localeCompare(b.sessionName);
}
