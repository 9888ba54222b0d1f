import type { ChatId } from "../utils/ids.js";
import type { SessionMessage, TurnReply } from "./session.js";

/** The chat and channel a message came in on: where the reply to it goes. */
export interface Handle {
  chatId: ChatId;
  channel: string;
}

interface Entry {
  /** The session's key (the manager's): one person's handles share it. */
  chatId: ChatId;
  /** Where the message came from; unset for messages delivered without one. */
  from?: Handle;
  /** Its place in the order messages were added, across all sessions. */
  sequence: number;
  message: SessionMessage;
  resolve(reply: TurnReply): void;
  reject(error: Error): void;
  /** The caller's record ids the message stands for (`Delivery.recordIds`). */
  recordIds: readonly number[];
  /** Turns that ended in a retriable error for this message. */
  failedAttempts: number;
}

/**
 * Every message delivered and not yet answered, per session (keyed by the session's chat: see
 * `SessionManager`) and in order, with the promise of its reply and the handle it came from. It outlives sessions: whenever a chat's session is restarted, replaced or reopened, the
 * new one is given all of that chat's entries again, so nothing is dropped.
 */
export class MessageLedger {
  private readonly byChat = new Map<ChatId, Map<string, Entry>>();
  private readonly byId = new Map<string, Entry>();
  private readonly emptyWaiters = new Set<() => void>();
  private added = 0;

  /**
   * Adds a message, standing for `recordIds` in the caller's record; the promise resolves with
   * the turn that answers it.
   */
  add(
    chatId: ChatId,
    message: SessionMessage,
    recordIds: readonly number[] = [],
    from?: Handle,
  ): Promise<TurnReply> {
    const reply = new Promise<TurnReply>((resolve, reject) => {
      const entry: Entry = {
        chatId,
        message,
        resolve,
        reject,
        recordIds,
        failedAttempts: 0,
        sequence: (this.added += 1),
        ...(from ? { from } : {}),
      };
      this.byId.set(message.id, entry);
      let messages = this.byChat.get(chatId);
      if (!messages) {
        messages = new Map();
        this.byChat.set(chatId, messages);
      }
      messages.set(message.id, entry);
    });
    // Fire-and-forget channels never look at it; a rejection must not go unhandled.
    reply.catch(() => undefined);
    return reply;
  }

  /** The chat's unanswered messages, oldest first. */
  messagesOf(chatId: ChatId): SessionMessage[] {
    return [...(this.byChat.get(chatId)?.values() ?? [])].map((entry) => entry.message);
  }

  countOf(chatId: ChatId): number {
    return this.byChat.get(chatId)?.size ?? 0;
  }

  get size(): number {
    return this.byId.size;
  }

  /** Counts a retriable failure of the message; returns how many it has had. */
  recordFailure(messageId: string): number {
    const entry = this.byId.get(messageId);
    if (!entry) return 0;
    entry.failedAttempts += 1;
    return entry.failedAttempts;
  }

  /**
   * The turn answered these messages: they leave the ledger and their promises resolve. Returns
   * the reply for them, with the record ids they stood for (`TurnReply.recordIds`) and the handle
   * of the latest of them (`TurnReply.replyTo`): a turn that answers two of a person's handles
   * at once answers on the one that wrote last.
   */
  settle(messageIds: readonly string[], reply: TurnReply): TurnReply {
    const entries = messageIds.flatMap((id) => this.take(id) ?? []);
    let latest: Entry | undefined;
    for (const entry of entries) {
      if (entry.from && (!latest || entry.sequence > latest.sequence)) latest = entry;
    }
    const replyTo = latest?.from;
    const settled: TurnReply = {
      ...reply,
      messageIds: [...messageIds],
      recordIds: entries.flatMap((entry) => entry.recordIds),
      ...(replyTo ? { replyTo } : {}),
    };
    for (const entry of entries) entry.resolve(settled);
    this.notifyIfEmpty();
    return settled;
  }

  /** Drops a message that can no longer be answered, rejecting its promise. */
  fail(messageId: string, error: Error): void {
    this.take(messageId)?.reject(error);
    this.notifyIfEmpty();
  }

  /** Rejects the waiting callers without dropping the messages (they stay queued). */
  rejectWaiters(chatId: ChatId, error: Error): void {
    for (const entry of this.byChat.get(chatId)?.values() ?? []) {
      entry.reject(error);
      entry.resolve = () => undefined;
      entry.reject = () => undefined;
    }
  }

  /** Drops a chat's messages (the chat was forgotten), rejecting their promises. */
  dropChat(chatId: ChatId, error: Error): void {
    for (const id of [...(this.byChat.get(chatId)?.keys() ?? [])]) this.fail(id, error);
  }

  dropAll(error: Error): void {
    for (const chatId of [...this.byChat.keys()]) this.dropChat(chatId, error);
  }

  /** Resolves once the ledger is empty. */
  whenEmpty(): { promise: Promise<void>; cancel(): void } {
    if (this.size === 0) return { promise: Promise.resolve(), cancel: () => undefined };
    let done!: () => void;
    const promise = new Promise<void>((resolve) => {
      done = resolve;
      this.emptyWaiters.add(done);
    });
    return { promise, cancel: () => this.emptyWaiters.delete(done) };
  }

  private take(messageId: string): Entry | undefined {
    const entry = this.byId.get(messageId);
    if (!entry) return undefined;
    this.byId.delete(messageId);
    const messages = this.byChat.get(entry.chatId);
    messages?.delete(messageId);
    if (messages?.size === 0) this.byChat.delete(entry.chatId);
    return entry;
  }

  private notifyIfEmpty(): void {
    if (this.size > 0) return;
    for (const done of this.emptyWaiters) done();
    this.emptyWaiters.clear();
  }
}
