/**
 * Keeps a node's place in the cluster (`docs/cluster.md`): every third of `leaseMs` it writes the
 * node's row (its heartbeat, its free slots) and renews the leases it holds, in one round trip.
 * A lease the renewal does not extend was taken over or released; a lease that runs out while
 * the database does not answer may be taken at any moment. Either way the keeper drops it and
 * calls `onLost` at once, so the session manager stops that session before another node starts
 * it. (A write the session still makes is refused by the fence regardless: `fencedWrite`.)
 *
 * The decisions are pure (`lease-policy.ts`); this class owns the timer, on an injected clock.
 */
import type { Logger } from "../logging/logger.js";
import type { ChatOwnership, Lease, NodeId, NodeReport } from "../store/chat-ownership.js";
import type { Clock } from "../utils/clock.js";
import { describeError } from "../utils/errors.js";
import type { SessionName } from "../utils/ids.js";
import {
  expiredWithoutRenewal,
  renewIntervalMs,
  settleRenewal,
  type LostLease,
} from "./lease-policy.js";

export interface LeaseKeeperOptions {
  ownership: ChatOwnership;
  clock: Clock;
  logger: Logger;
  nodeId: NodeId;
  /** `cluster.leaseSeconds` in ms: how long a lease and a heartbeat hold without renewal. */
  leaseMs: number;
  /** What the node says of itself now: its address, slots, channels and state. */
  report: () => Omit<NodeReport, "nodeId">;
  /** A lease this node held is lost: stop its session now. Called once per lease. */
  onLost: (lost: LostLease) => void;
}

export class LeaseKeeper {
  private readonly held = new Map<SessionName, Lease>();
  private cancelTimer: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private readonly logger: Logger;

  constructor(private readonly options: LeaseKeeperOptions) {
    this.logger = options.logger.child({ nodeId: options.nodeId });
  }

  /**
   * Writes the node's row once (a failure rejects: the node cannot join), then keeps renewing
   * every third of the lease until `stop` or `leave`.
   */
  async start(): Promise<void> {
    await this.heartbeat();
    this.cancelTimer ??= this.options.clock.every(renewIntervalMs(this.options.leaseMs), () => {
      void this.tick();
    });
  }

  /** Keeps `lease` renewed from now on (after an acquire). */
  hold(lease: Lease): void {
    this.held.set(lease.sessionName, lease);
  }

  /** Stops renewing the session's lease (it was released, or its session stopped for good). */
  forget(sessionName: SessionName): void {
    this.held.delete(sessionName);
  }

  /** Whether this node holds the session's lease (as far as the last renewal knows). */
  holds(sessionName: SessionName): boolean {
    return this.held.has(sessionName);
  }

  /** The leases this node holds, as last renewed. */
  leases(): Lease[] {
    return [...this.held.values()];
  }

  /**
   * One round: heartbeat and renewal. A round already under way is not doubled: its promise is
   * returned. Never rejects; failures are logged and, past a lease's expiry, reported as lost.
   */
  tick(): Promise<void> {
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Resolves when no round is under way. */
  async idle(): Promise<void> {
    await this.running;
  }

  /** Stops the timer and waits for a round under way; the leases are left to run out. */
  async stop(): Promise<void> {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    await this.running;
  }

  /**
   * A graceful stop: stops renewing, then releases every lease of this node and marks it `gone`,
   * so other nodes may take its chats at once; resolves with the sessions released.
   */
  async leave(): Promise<SessionName[]> {
    await this.stop();
    const released = await this.options.ownership.leave(this.options.nodeId);
    this.held.clear();
    this.logger.info("node-leave", { released: released.length });
    return released;
  }

  private async heartbeat(): Promise<void> {
    const { ownership, nodeId, leaseMs } = this.options;
    await ownership.heartbeat({ ...this.options.report(), nodeId }, leaseMs);
  }

  private async round(): Promise<void> {
    try {
      await this.heartbeat();
    } catch (error) {
      this.logger.warn("node-heartbeat-fail", { cause: describeError(error) });
    }
    const sent = this.leases();
    if (sent.length === 0) return;
    let lost: LostLease[];
    try {
      const renewed = await this.options.ownership.renew(
        this.options.nodeId,
        sent,
        this.options.leaseMs,
      );
      const settled = settleRenewal(sent, renewed);
      for (const lease of settled.kept) {
        // Not if it was forgotten, or replaced by a new tenure, while the renewal ran.
        if (this.held.get(lease.sessionName)?.epoch === lease.epoch) this.hold(lease);
      }
      lost = settled.lost;
    } catch (error) {
      this.logger.warn("lease-renew-fail", {
        leases: sent.length,
        cause: describeError(error),
      });
      lost = expiredWithoutRenewal(sent, this.options.clock.now());
    }
    for (const loss of lost) {
      const { lease, reason } = loss;
      if (this.held.get(lease.sessionName)?.epoch !== lease.epoch) continue;
      this.held.delete(lease.sessionName);
      this.logger.warn("lease-lose", {
        sessionName: lease.sessionName,
        epoch: lease.epoch,
        reason,
      });
      try {
        this.options.onLost(loss);
      } catch (error) {
        this.logger.error("lease-lose-handler-fail", {
          sessionName: lease.sessionName,
          cause: describeError(error),
        });
      }
    }
  }
}
