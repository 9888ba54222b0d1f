/**
 * The lease keeper's decisions (`lease-keeper.ts`), as pure functions: how often to renew, and
 * after a renewal (or a failed one) which of this node's leases it has lost.
 */
import type { Lease } from "../store/chat-ownership.js";
import type { SessionName } from "../utils/ids.js";

/**
 * A lease is renewed every third of its length: a node can miss two renewals in a row (a slow
 * database, a pause) and still hold its chats.
 */
export function renewIntervalMs(leaseMs: number): number {
  return Math.max(1, Math.floor(leaseMs / 3));
}

/** Why a node lost a lease. */
export type LeaseLossReason =
  /** The renewal found the row changed: another node took it over, or it was released. */
  | "taken"
  /** No renewal got through before it ran out: another node may take it at any moment. */
  | "expired";

export interface LostLease {
  lease: Lease;
  reason: LeaseLossReason;
}

/**
 * After a renewal answered: the leases sent that came back renewed are kept with their new
 * expiry; those that did not are lost (`taken`).
 */
export function settleRenewal(
  sent: readonly Lease[],
  renewed: readonly Lease[],
): { kept: Lease[]; lost: LostLease[] } {
  const byName = new Map<SessionName, Lease>(renewed.map((lease) => [lease.sessionName, lease]));
  const kept: Lease[] = [];
  const lost: LostLease[] = [];
  for (const lease of sent) {
    const answer = byName.get(lease.sessionName);
    if (answer && answer.epoch === lease.epoch) kept.push(answer);
    else lost.push({ lease, reason: "taken" });
  }
  return { kept, lost };
}

/**
 * After a renewal failed (the database did not answer): the leases that have run out by this
 * node's clock are lost (`expired`), since another node may already hold them; the rest wait for
 * the next renewal.
 */
export function expiredWithoutRenewal(held: readonly Lease[], now: number): LostLease[] {
  return held
    .filter((lease) => lease.expiresAt <= now)
    .map((lease) => ({ lease, reason: "expired" as const }));
}
