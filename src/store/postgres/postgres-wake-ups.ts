/**
 * Wake-ups between the nodes of a cluster, over PostgreSQL's LISTEN/NOTIFY (`docs/cluster.md`):
 *
 * - `inbox` on channel `dispatch_inbox`: a node accepted a message for a session that `owner`
 *   runs (or is to run); the owner should look in the journal now.
 * - `reply` on channel `dispatch_reply`: the reply to message `messageId` is recorded; `node`
 *   holds the HTTP request that waits for it.
 *
 * A notification is a hint, never the message itself: the journal holds what happened. Sent
 * inside the transaction that records the message (`sendWakeUp(transaction, ...)`), it is
 * delivered at commit and never for a rollback. A notification sent while a listener is
 * disconnected is lost for it, so the listener makes up for it: it calls `catchUp` (the
 * consumer's look at the journal) once each time it is listening again, and every
 * `pollIntervalMs` while it is not, reconnecting meanwhile with a doubling backoff.
 *
 * The listener holds one connection of its own for as long as it runs (LISTEN is a session's
 * state): point it at PostgreSQL itself or a session-mode pooler, not a transaction-mode one.
 * Sending works through any of them.
 */
import pg from "pg";
import type { Logger } from "../../logging/logger.js";
import type { NodeId } from "../chat-ownership.js";
import { systemClock, type Clock } from "../../utils/clock.js";
import { describeError } from "../../utils/errors.js";
import { asSessionName, type SessionName } from "../../utils/ids.js";
import { describeTarget } from "./postgres-database.js";

export const WAKE_UP_CHANNELS = {
  inbox: "dispatch_inbox",
  reply: "dispatch_reply",
  outbox: "dispatch_outbox",
} as const;

export type WakeUp =
  | { kind: "inbox"; sessionName: SessionName; owner: NodeId }
  | { kind: "reply"; sessionName: SessionName; node: NodeId; inboundIds: number[] }
  | { kind: "outbox"; node: NodeId; channel: string };

/** A reply wake-up's `node` that addresses every node. */
export const EVERY_NODE = "*";

/** What a wake-up can be sent through: the pool, or a transaction's connection. */
export type Queryable = Pick<pg.Pool, "query"> | Pick<pg.PoolClient, "query">;

/** The node a wake-up is for. */
export function addresseeOf(wakeUp: WakeUp): NodeId {
  return wakeUp.kind === "inbox" ? wakeUp.owner : wakeUp.node;
}

/**
 * Sends a wake-up; through a transaction's connection it leaves at commit, and not at all on
 * rollback.
 */
export async function sendWakeUp(via: Queryable, wakeUp: WakeUp): Promise<void> {
  const { kind, ...payload } = wakeUp;
  await via.query("SELECT pg_notify($1, $2)", [WAKE_UP_CHANNELS[kind], JSON.stringify(payload)]);
}

/** A notification's wake-up; undefined when it is not one dispatch sends. */
export function parseWakeUp(channel: string, payload: string | undefined): WakeUp | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload ?? "");
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const fields = value as Record<string, unknown>;
  const text = (key: string) => (typeof fields[key] === "string" ? fields[key] : undefined);
  if (channel === WAKE_UP_CHANNELS.outbox) {
    const node = text("node");
    const outboxChannel = text("channel");
    return node && outboxChannel ? { kind: "outbox", node, channel: outboxChannel } : undefined;
  }
  const sessionName = text("sessionName");
  if (!sessionName) return undefined;
  if (channel === WAKE_UP_CHANNELS.inbox) {
    const owner = text("owner");
    return owner ? { kind: "inbox", sessionName: asSessionName(sessionName), owner } : undefined;
  }
  if (channel === WAKE_UP_CHANNELS.reply) {
    const node = text("node");
    const ids = fields.inboundIds;
    const inboundIds =
      Array.isArray(ids) && ids.length > 0 && ids.every((id) => Number.isSafeInteger(id))
        ? (ids as number[])
        : undefined;
    return node && inboundIds
      ? { kind: "reply", sessionName: asSessionName(sessionName), node, inboundIds }
      : undefined;
  }
  return undefined;
}

export interface WakeUpListenerOptions {
  /** The database's URL; the listener opens a connection of its own. */
  url: string;
  /** Only wake-ups addressed to this node are passed on. */
  nodeId: NodeId;
  logger: Logger;
  onWakeUp: (wakeUp: WakeUp) => void;
  /**
   * Looks in the journal for what a lost notification would have said. Called once each time
   * the listener is listening again, and every `pollIntervalMs` while it is not.
   */
  catchUp: () => Promise<void>;
  /** Told each time the listening connection is up or down. */
  onConnectionChange?: (connected: boolean) => void;
  clock?: Clock;
  /** Default 1000. */
  pollIntervalMs?: number;
  /** First wait before reconnecting; doubles at each failure up to `maxReconnectDelayMs`. */
  reconnectDelayMs?: number;
  /** Default 5000. */
  maxReconnectDelayMs?: number;
  /** How often the listening connection is checked; one ping unanswered until the next drops it. */
  pingIntervalMs?: number;
}

const DEFAULTS = {
  pollIntervalMs: 1000,
  reconnectDelayMs: 100,
  maxReconnectDelayMs: 5000,
  pingIntervalMs: 10_000,
};

export class WakeUpListener {
  private client: pg.Client | undefined;
  private stopping = false;
  private cancelPoll: (() => void) | undefined;
  private cancelPing: (() => void) | undefined;
  private cancelReconnect: (() => void) | undefined;
  private reconnectDelayMs: number;
  private catchingUp: Promise<void> | undefined;
  private catchUpAgain = false;
  private readonly clock: Clock;
  private readonly target: string;
  /** The listening connection's server process, while there is one (for `pg_stat_activity`). */
  backendPid: number | undefined;

  constructor(private readonly options: WakeUpListenerOptions) {
    this.clock = options.clock ?? systemClock;
    this.target = describeTarget(options.url);
    this.reconnectDelayMs = options.reconnectDelayMs ?? DEFAULTS.reconnectDelayMs;
  }

  /** Whether the listening connection is up. */
  get connected(): boolean {
    return this.client !== undefined;
  }

  /** Connects and listens, then catches up once; rejects when the first connection fails. */
  async start(): Promise<void> {
    await this.connect();
  }

  /** Stops listening and polling; resolves once the connection is closed and no catch-up runs. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.cancelPing?.();
    this.cancelPoll?.();
    this.cancelReconnect?.();
    const client = this.client;
    this.client = undefined;
    this.backendPid = undefined;
    await client?.end().catch(() => undefined);
    await this.catchingUp;
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.options.url,
      application_name: "dispatch-wake-ups",
      keepAlive: true,
    });
    let dropped: Error | undefined;
    client.on("notification", (message) => this.deliver(message.channel, message.payload));
    client.on("error", (error) => {
      dropped ??= error;
      this.lose(client, error);
    });
    client.on("end", () => {
      dropped ??= new Error("the connection ended");
      this.lose(client, undefined);
    });
    try {
      await client.connect();
      const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      await client.query(
        Object.values(WAKE_UP_CHANNELS)
          .map((name) => `LISTEN ${name}`)
          .join("; "),
      );
      // Dropped after the last answer but before this line: not a connection to keep.
      if (dropped) throw dropped;
      if (this.stopping) {
        await client.end().catch(() => undefined);
        return;
      }
      this.client = client;
      this.backendPid = rows[0]?.pid;
    } catch (error) {
      client.removeAllListeners("end");
      await client.end().catch(() => undefined);
      throw error;
    }
    this.cancelPoll?.();
    this.cancelPoll = undefined;
    this.cancelPing = this.watch(client);
    this.reconnectDelayMs = this.options.reconnectDelayMs ?? DEFAULTS.reconnectDelayMs;
    this.options.logger.info("wake-up-listen", { target: this.target });
    this.options.onConnectionChange?.(true);
    // What was notified before LISTEN took hold is in the journal.
    void this.catchUp();
  }

  /**
   * Pings the listening connection every `pingIntervalMs`: a ping still unanswered at the next
   * one (a server that stopped answering, a network that dropped without a reset, which TCP
   * would take minutes to notice) counts as a lost connection.
   */
  private watch(client: pg.Client): () => void {
    let waiting = false;
    return this.clock.every(this.options.pingIntervalMs ?? DEFAULTS.pingIntervalMs, () => {
      if (waiting) {
        this.lose(client, new Error("the server did not answer a ping"));
        return;
      }
      waiting = true;
      client.query("SELECT 1").then(
        () => {
          waiting = false;
        },
        (error: unknown) => {
          this.lose(client, error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  private deliver(channel: string, payload: string | undefined): void {
    const wakeUp = parseWakeUp(channel, payload);
    if (!wakeUp) {
      this.options.logger.warn("wake-up-malformed", { channel });
      return;
    }
    const addressee = addresseeOf(wakeUp);
    if (addressee !== this.options.nodeId && addressee !== EVERY_NODE) return;
    try {
      this.options.onWakeUp(wakeUp);
    } catch (error) {
      this.options.logger.error("wake-up-handler-fail", { cause: describeError(error) });
    }
  }

  /** The listening connection dropped: poll until it is back, and reconnect. */
  private lose(client: pg.Client, error: Error | undefined): void {
    if (this.client !== client || this.stopping) return;
    this.client = undefined;
    this.backendPid = undefined;
    this.cancelPing?.();
    this.cancelPing = undefined;
    client.end().catch(() => undefined);
    this.options.logger.warn("wake-up-connection-lose", {
      target: this.target,
      cause: error ? describeError(error) : "the connection ended",
    });
    this.options.onConnectionChange?.(false);
    const pollIntervalMs = this.options.pollIntervalMs ?? DEFAULTS.pollIntervalMs;
    this.cancelPoll ??= this.clock.every(pollIntervalMs, () => void this.catchUp());
    void this.catchUp();
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const delayMs = this.reconnectDelayMs;
    this.cancelReconnect = this.clock.after(delayMs, () => {
      this.cancelReconnect = undefined;
      if (this.stopping) return;
      this.connect().catch((error: unknown) => {
        if (this.stopping) return;
        const maxMs = this.options.maxReconnectDelayMs ?? DEFAULTS.maxReconnectDelayMs;
        this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, maxMs);
        this.options.logger.warn("wake-up-reconnect-fail", {
          target: this.target,
          retryInMs: this.reconnectDelayMs,
          cause: describeError(error),
        });
        this.scheduleReconnect();
      });
    });
  }

  /**
   * One catch-up at a time; one asked for while another runs runs again after it, since the one
   * running may have looked before what it is asked for was written.
   */
  private catchUp(): Promise<void> {
    if (this.catchingUp) {
      this.catchUpAgain = true;
      return this.catchingUp;
    }
    const run = async () => {
      do {
        this.catchUpAgain = false;
        try {
          await this.options.catchUp();
        } catch (error) {
          this.options.logger.warn("wake-up-catch-up-fail", { cause: describeError(error) });
        }
      } while (this.catchUpAgain && !this.stopping);
    };
    this.catchingUp = run().finally(() => {
      this.catchingUp = undefined;
    });
    return this.catchingUp;
  }
}
