import { DispatchError } from "./errors.js";
import type { ChatId } from "./ids.js";

export interface PoolStatus {
  live: number;
  bound: number;
  /** Chats waiting for a slot. */
  waiting: number;
  evictions: number;
}

/** What the pool needs to know of the sessions it bounds; the session manager provides it. */
export interface PoolMembers {
  /** Sessions that hold a live agent process now. */
  liveCount(): number;
  /** The idle session with nothing waiting that was used longest ago, other than `except`. */
  leastRecentlyUsedIdle(except: ChatId): ChatId | undefined;
  /** Stops a session to free its slot (it resumes on its next message). */
  evict(chatId: ChatId, forChat: ChatId): Promise<void>;
}

/**
 * At most `bound` live agent processes. A chat that needs one while the pool is full takes the
 * slot of the least recently used idle session; when every session is busy, chats wait in
 * arrival order. A busy session is never evicted.
 */
export class LiveSessionPool {
  /** Slots taken by sessions being opened and not yet live. */
  private reserved = 0;
  private readonly waiters: (() => void)[] = [];
  private evictions = 0;
  private closed = false;

  constructor(
    private readonly bound: number,
    private readonly members: PoolMembers,
  ) {}

  /** Resolves once a slot is reserved for `chatId`; call `release` when its session is live or failed. */
  async acquire(chatId: ChatId): Promise<void> {
    let waited = false;
    for (;;) {
      if (this.closed) {
        throw new DispatchError(
          "shutting_down",
          "dispatch is shutting down; send the message again after it restarts",
        );
      }
      if (this.members.liveCount() + this.reserved < this.bound) {
        this.reserved += 1;
        return;
      }
      const victim = this.members.leastRecentlyUsedIdle(chatId);
      if (victim) {
        this.evictions += 1;
        // The victim's slot is ours from now: nobody woken meanwhile may take it.
        this.reserved += 1;
        try {
          await this.members.evict(victim, chatId);
        } catch (error) {
          this.reserved -= 1;
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

  /** The reserved slot now counts as a live session (or was not needed after all). */
  release(): void {
    this.reserved -= 1;
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
    return {
      live: this.members.liveCount() + this.reserved,
      bound: this.bound,
      waiting: this.waiters.length,
      evictions: this.evictions,
    };
  }
}
