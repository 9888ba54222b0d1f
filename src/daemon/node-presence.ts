/**
 * The daemon as a node of the cluster (issue 14, `docs/cluster.md`): it writes its row through
 * the chat-ownership port at start, keeps it fresh with the lease keeper (its heartbeat carries
 * its free live-session slots), and leaves at a graceful stop (its row `gone`, its leases handed
 * back). Which adapter holds the rows is the caller's choice: the embedded one for a daemon on
 * its own, PostgreSQL for nodes sharing a database.
 */
import type { NodeView } from "../channels/http/control-plane.js";
import { LeaseKeeper } from "../cluster/lease-keeper.js";
import type { LostLease } from "../cluster/lease-policy.js";
import type { PoolStatus } from "../core/live-session-pool.js";
import type { Logger } from "../logging/logger.js";
import type { ChatOwnership, NodeId, NodeState } from "../store/chat-ownership.js";
import type { Clock } from "../utils/clock.js";
import type { SessionName } from "../utils/ids.js";
import { toNodeView } from "./node-view.js";

export interface NodePresenceOptions {
  ownership: ChatOwnership;
  nodeId: NodeId;
  /** Where this node's HTTP API is (read at every heartbeat: known once it listens). */
  address: () => string;
  /** The channels on now (read at every heartbeat). */
  channels: () => string[];
  /** The session manager's pool: its slots taken and its bound. */
  pool: () => Pick<PoolStatus, "live" | "bound">;
  /** `draining` once the daemon is stopping. */
  state: () => NodeState;
  /**
   * How many chats each node owns: the leases each holds in a cluster; on one embedded node, every
   * registered chat is its own.
   */
  chatsOf: () => Promise<Map<NodeId, number>>;
  /** The node that owns a session: the router's view in a cluster; else this node. */
  ownerOf?: (sessionName: SessionName) => NodeId | null;
  /** A lease this node held is lost (a cluster's router stops the session). */
  onLost?: (lost: LostLease) => void;
  /** `cluster.leaseSeconds` in ms. */
  leaseMs: number;
  clock: Clock;
  logger: Logger;
}

export interface NodePresence {
  nodeId: NodeId;
  /** The leases this node holds, renewed with its heartbeat (`lease-keeper.ts`). */
  leases: Pick<LeaseKeeper, "hold" | "holds" | "forget">;
  /** The node that owns a session; on one embedded node, this one. */
  ownerOf(sessionName: SessionName): NodeId | null;
  /** Writes the node's row now (its channels came up), with a renewal of its leases. */
  refresh(): Promise<void>;
  /** Every node's row, as `GET /v1/nodes` shows it. */
  listNodes(): Promise<NodeView[]>;
  /** A graceful stop: the row becomes `gone` and every lease of this node is handed back. */
  leave(): Promise<void>;
}

/** Writes the node's row (a failure rejects: the daemon cannot join) and keeps it fresh. */
export async function startNodePresence(options: NodePresenceOptions): Promise<NodePresence> {
  const { ownership, nodeId, clock, leaseMs } = options;
  const startedAt = clock.now();
  const keeper = new LeaseKeeper({
    ownership,
    clock,
    logger: options.logger,
    nodeId,
    leaseMs,
    report: () => {
      const pool = options.pool();
      return {
        address: options.address(),
        startedAt,
        liveSlotsFree: Math.max(0, pool.bound - pool.live),
        liveSlotsTotal: pool.bound,
        channels: options.channels(),
        state: options.state(),
      };
    },
    onLost: (lost) => options.onLost?.(lost),
  });
  await keeper.start();
  options.logger.info("node-join", { address: options.address(), leaseMs });
  let leaving: Promise<void> | undefined;
  return {
    nodeId,
    leases: keeper,
    refresh: () => keeper.tick(),
    ownerOf: (sessionName) => (options.ownerOf ? options.ownerOf(sessionName) : nodeId),
    async listNodes() {
      const now = clock.now();
      const [rows, chats] = await Promise.all([ownership.listNodes(), options.chatsOf()]);
      return rows.map((row) =>
        toNodeView({
          row,
          leaseMs,
          now,
          chats: chats.get(row.nodeId) ?? 0,
          self: row.nodeId === nodeId,
        }),
      );
    },
    leave() {
      leaving ??= keeper.leave().then(() => undefined);
      return leaving;
    },
  };
}
