import { DispatchError } from "../utils/errors.js";
import type { ChatId, Tier } from "../utils/ids.js";

export interface PoolStatus {
  live: number;
  bound: number;
  /** Chats waiting for a slot. */
  waiting: number;
  evictions: number;
  /** Slots held back for reservations whose tiers hold fewer sessions than reserved now. */
  heldForTiers: number;
}

/**
 * Slots kept free for the sessions of some tiers while those tiers together hold fewer than
 * `slots`: one tier's `reservedLiveSessions`, or every contact's tier (all but `unknown`).
 */
export interface Reservation {
  slots: number;
  covers(tier: Tier): boolean;
}

/** What the pool needs to know of the sessions it bounds; the session manager provides it. */
export interface PoolMembers {
  /** The tier of every session that holds a live agent process now, one entry per session. */
  liveTiers(): Iterable<Tier>;
  tierOf(chatId: ChatId): Tier;
  /**
   * The idle session with nothing waiting that was used longest ago, other than `except`,
   * among those `evictable` accepts.
   */
  leastRecentlyUsedIdle(except: ChatId, evictable: (chatId: ChatId) => boolean): ChatId | undefined;
  /** Stops a session to free its slot (it resumes on its next message). */
  evict(chatId: ChatId, forChat: ChatId): Promise<void>;
}

/**
 * At most `bound` live agent processes. A chat that needs one while the pool is full takes the
 * slot of the least recently used idle session; when every session is busy, chats wait in
 * arrival order. A busy session is never evicted.
 *
 * Tiers may reserve slots (`reservations`): while they hold fewer sessions than they reserve,
 * the difference is kept free for them, so an admin's first message, or any contact's while
 * strangers crowd in, never waits behind other chats. The rule is one inequality: sessions
 * holding a slot plus the slots still owed to reservations never exceed the bound. Taking a slot
 * or evicting for one must keep it true.
 */
export class LiveSessionPool {
  /** Slots taken by sessions being opened and not yet live, by tier. */
  private readonly opening = new Map<Tier, number>();
  private readonly waiters: (() => void)[] = [];
  private evictions = 0;
  private closed = false;

  constructor(
    private readonly bound: number,
    private readonly members: PoolMembers,
    private readonly reservations: readonly Reservation[] = [],
  ) {}

  /** Resolves once a slot is reserved for `chatId`; call `release` when its session is live or failed. */
  async acquire(chatId: ChatId, tier: Tier): Promise<void> {
    let waited = false;
    for (;;) {
      if (this.closed) {
        throw new DispatchError(
          "shutting_down",
          "dispatch is shutting down; send the message again after it restarts",
        );
      }
      if (this.fits(tier)) {
        this.countOpening(tier, 1);
        return;
      }
      const victim = this.members.leastRecentlyUsedIdle(chatId, (candidate) =>
        this.fits(tier, this.members.tierOf(candidate)),
      );
      if (victim) {
        this.evictions += 1;
        // The victim's slot is ours from now: nobody woken meanwhile may take it.
        this.countOpening(tier, 1);
        try {
          await this.members.evict(victim, chatId);
        } catch (error) {
          this.countOpening(tier, -1);
          throw error;
        }
        return;
      }
      // Someone who already waited keeps their place at the front.
      await new Promise<void>((resolve) => {
        if (waited) this.waiters.unshift(resolve);
        else this.waiters.push(resolve);
      });
      waited = true;
    }
  }

  /** The slot reserved for a chat of `tier` now counts as a live session (or was not needed). */
  release(tier: Tier): void {
    this.countOpening(tier, -1);
  }

  /** A slot was freed, or a session became idle and so evictable: let the first waiter look. */
  wake(): void {
    this.waiters.shift()?.();
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /** Wakes everyone waiting; they are refused from now on. */
  close(): void {
    this.closed = true;
    for (const wake of this.waiters.splice(0)) wake();
  }

  status(): PoolStatus {
    const holdings = this.holdings();
    return {
      live: sum(holdings.values()),
      bound: this.bound,
      waiting: this.waiters.length,
      evictions: this.evictions,
      heldForTiers: this.owed(holdings),
    };
  }

  /** Whether a session of `take` may hold a slot, after one of `evicted` (if any) has let go of its own. */
  private fits(take: Tier, evicted?: Tier): boolean {
    const holdings = this.holdings();
    if (evicted !== undefined) holdings.set(evicted, (holdings.get(evicted) ?? 0) - 1);
    holdings.set(take, (holdings.get(take) ?? 0) + 1);
    return sum(holdings.values()) + this.owed(holdings) <= this.bound;
  }

  /** Sessions holding a slot (live or being opened), by tier. */
  private holdings(): Map<Tier, number> {
    const holdings = new Map(this.opening);
    for (const tier of this.members.liveTiers()) holdings.set(tier, (holdings.get(tier) ?? 0) + 1);
    return holdings;
  }

  private owed(holdings: ReadonlyMap<Tier, number>): number {
    let owed = 0;
    for (const reservation of this.reservations) {
      let held = 0;
      for (const [tier, count] of holdings) if (reservation.covers(tier)) held += count;
      owed += Math.max(0, reservation.slots - held);
    }
    return owed;
  }

  private countOpening(tier: Tier, change: 1 | -1): void {
    const count = (this.opening.get(tier) ?? 0) + change;
    if (count > 0) this.opening.set(tier, count);
    else this.opening.delete(tier);
  }
}

function sum(values: Iterable<number>): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}
