/**
 * Wake-ups over LISTEN/NOTIFY on the test run's private PostgreSQL server: one node (its own
 * pool) records a message and notifies in one transaction; another node's listener (its own
 * connection) hears it. When the listening connection is killed (`pg_terminate_backend`), the
 * listener polls its catch-up until it has reconnected, so a notification sent meanwhile is not
 * lost.
 */
import pg from "pg";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { PostgresDatabase } from "../../../src/store/postgres/postgres-database.js";
import {
  EVERY_NODE,
  parseWakeUp,
  sendWakeUp,
  WakeUpListener,
  type WakeUp,
} from "../../../src/store/postgres/postgres-wake-ups.js";
import { asSessionName } from "../../../src/utils/ids.js";
import { ManualClock } from "../../support/manual-clock.js";
import { createMemoryLogger, type LogRecord } from "../../support/memory-logger.js";
import { useTestDatabase } from "../../support/postgres-test-database.js";

const ALICE = asSessionName("alice");

/** Events of one kind as they arrive, and a promise for the next one. */
class Arrivals<T> {
  readonly seen: T[] = [];
  private waiters: { done: (seen: T[]) => boolean; resolve: () => void }[] = [];

  push(value: T): void {
    this.seen.push(value);
    this.waiters = this.waiters.filter((waiter) => {
      if (!waiter.done(this.seen)) return true;
      waiter.resolve();
      return false;
    });
  }

  /** Resolves once `count` have arrived in all. */
  until(count: number): Promise<void> {
    return this.when((seen) => seen.length >= count);
  }

  /** Resolves once what has arrived satisfies `done`. */
  when(done: (seen: T[]) => boolean): Promise<void> {
    if (done(this.seen)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ done, resolve }));
  }
}

const postgres = useTestDatabase();
let nodeA: PostgresDatabase;

beforeAll(async () => {
  nodeA = await postgres.open();
  // A stand-in for the journal: what the wake-ups point at.
  await nodeA.pool.query(
    `CREATE TABLE inbox (id SERIAL PRIMARY KEY, session_name TEXT NOT NULL, owner TEXT NOT NULL)`,
  );
});

/** Node a records a message for `owner`'s session and wakes the owner, in one transaction. */
async function accept(text: string, owner: string, commit = true): Promise<void> {
  const client = await nodeA.pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("INSERT INTO inbox (session_name, owner) VALUES ($1, $2)", [text, owner]);
    await sendWakeUp(client, { kind: "inbox", sessionName: asSessionName(text), owner });
    await client.query(commit ? "COMMIT" : "ROLLBACK");
  } finally {
    client.release();
  }
}

describe("WakeUpListener", () => {
  let listener: WakeUpListener;
  let wakeUps: Arrivals<WakeUp>;
  /** What each catch-up found in the inbox for node b, past what it had seen. */
  let caughtUp: Arrivals<string[]>;
  let connection: Arrivals<boolean>;
  let records: LogRecord[];
  let lastSeen: number;

  function listen(clock?: ManualClock, pingIntervalMs = 60_000): WakeUpListener {
    listener = new WakeUpListener({
      url: postgres.url,
      nodeId: "b",
      logger: createMemoryLogger(records),
      onWakeUp: (wakeUp) => wakeUps.push(wakeUp),
      async catchUp() {
        const { rows } = await nodeA.pool.query<{ id: number; session_name: string }>(
          "SELECT id, session_name FROM inbox WHERE owner = 'b' AND id > $1 ORDER BY id",
          [lastSeen],
        );
        lastSeen = rows.at(-1)?.id ?? lastSeen;
        caughtUp.push(rows.map((row) => row.session_name));
      },
      onConnectionChange: (connected) => connection.push(connected),
      ...(clock
        ? {
            clock,
            pollIntervalMs: 1_000,
            reconnectDelayMs: 10_000,
            maxReconnectDelayMs: 60_000,
            pingIntervalMs,
          }
        : {}),
    });
    return listener;
  }

  beforeEach(async () => {
    await nodeA.pool.query("TRUNCATE inbox");
    wakeUps = new Arrivals();
    caughtUp = new Arrivals();
    connection = new Arrivals();
    records = [];
    lastSeen = 0;
  });
  /** A server process a test stopped (SIGSTOP), woken before anything else, even on failure. */
  let frozen: number | undefined;
  afterEach(async () => {
    if (frozen !== undefined) process.kill(frozen, "SIGCONT");
    frozen = undefined;
    await listener.stop();
  });

  it("wakes the owner when another node commits a message for its session, and only then", async () => {
    await listen().start();
    await caughtUp.until(1);
    await accept("for-c", "c");
    await accept("rolled-back", "b", false);
    await accept("alice", "b");
    await wakeUps.until(1);
    // Notifications arrive in commit order: had c's or the rolled-back one come, it came first.
    expect(wakeUps.seen).toEqual([{ kind: "inbox", sessionName: ALICE, owner: "b" }]);
  });

  it("tells the node holding the waiting request that the reply is recorded", async () => {
    await listen().start();
    await sendWakeUp(nodeA.pool, {
      kind: "reply",
      sessionName: ALICE,
      node: "c",
      inboundIds: [1],
    });
    await sendWakeUp(nodeA.pool, {
      kind: "reply",
      sessionName: ALICE,
      node: "b",
      inboundIds: [2, 3],
    });
    await sendWakeUp(nodeA.pool, {
      kind: "reply",
      sessionName: ALICE,
      node: EVERY_NODE,
      inboundIds: [4],
    });
    await wakeUps.until(2);
    expect(wakeUps.seen).toEqual([
      { kind: "reply", sessionName: ALICE, node: "b", inboundIds: [2, 3] },
      { kind: "reply", sessionName: ALICE, node: EVERY_NODE, inboundIds: [4] },
    ]);
  });

  it("polls while its connection is killed, and listens again once reconnected", async () => {
    const clock = new ManualClock();
    await listen(clock).start();
    await caughtUp.until(1);
    expect(caughtUp.seen).toEqual([[]]);

    await nodeA.pool.query("SELECT pg_terminate_backend($1)", [listener.backendPid]);
    await connection.until(2);
    expect(connection.seen).toEqual([true, false]);
    expect(listener.connected).toBe(false);
    await caughtUp.until(2);

    // Sent while no one listens: the notification is lost, the poll finds the message.
    await accept("while-down", "b");
    clock.advance(1_000);
    await caughtUp.until(3);
    expect(caughtUp.seen.at(-1)).toEqual(["while-down"]);
    expect(wakeUps.seen).toEqual([]);
    expect(listener.connected).toBe(false);

    // The reconnect falls due: listening again, it catches up once, then hears notifications.
    clock.advance(9_000);
    await connection.until(3);
    await caughtUp.until(4);
    await accept("after", "b");
    await wakeUps.until(1);
    expect(wakeUps.seen).toEqual([
      { kind: "inbox", sessionName: asSessionName("after"), owner: "b" },
    ]);
    expect(records).toContainEqual(
      expect.objectContaining({ level: "warn", message: "wake-up-connection-lose" }) as LogRecord,
    );
  });

  it("waits twice as long after each failed reconnect, up to its bound", async () => {
    const clock = new ManualClock();
    const failures = new Arrivals<number>();
    records.push = (...added: LogRecord[]) => {
      for (const record of added) {
        Array.prototype.push.call(records, record);
        if (record.message === "wake-up-reconnect-fail") {
          failures.push(record.fields.retryInMs as number);
        }
      }
      return records.length;
    };
    await listen(clock).start();
    await caughtUp.until(1);
    const server = new URL(postgres.url);
    const database = server.pathname.slice(1);
    server.pathname = "/postgres";
    const admin = new pg.Client({ connectionString: server.toString() });
    await admin.connect();
    try {
      await admin.query(`ALTER DATABASE ${database} WITH ALLOW_CONNECTIONS false`);
      await nodeA.pool.query("SELECT pg_terminate_backend($1)", [listener.backendPid]);
      await connection.until(2);
      clock.advance(10_000);
      await failures.until(1);
      clock.advance(20_000);
      await failures.until(2);
      clock.advance(40_000);
      await failures.until(3);
      expect(failures.seen).toEqual([20_000, 40_000, 60_000]);
      await admin.query(`ALTER DATABASE ${database} WITH ALLOW_CONNECTIONS true`);
      clock.advance(60_000);
      await connection.until(3);
      expect(connection.seen).toEqual([true, false, true]);
    } finally {
      await admin.query(`ALTER DATABASE ${database} WITH ALLOW_CONNECTIONS true`);
      await admin.end();
    }
  });

  it("drops a connection whose server stops answering, and listens on a new one", async () => {
    const clock = new ManualClock();
    await listen(clock, 5_000).start();
    await caughtUp.until(1);
    frozen = listener.backendPid!;
    // The server process stops dead, its socket open: as a network that drops without a reset.
    process.kill(frozen, "SIGSTOP");
    clock.advance(5_000); // a ping goes out, and gets no answer
    clock.advance(5_000); // still none at the next: the connection is given up
    await connection.until(2);
    expect(connection.seen).toEqual([true, false]);
    clock.advance(10_000);
    await connection.until(3);
    expect(listener.backendPid).not.toBe(frozen);
    await accept("after", "b");
    await wakeUps.until(1);
    expect(wakeUps.seen).toEqual([
      { kind: "inbox", sessionName: asSessionName("after"), owner: "b" },
    ]);
    expect(records).toContainEqual(
      expect.objectContaining({
        message: "wake-up-connection-lose",
        fields: expect.objectContaining({ cause: "the server did not answer a ping" }) as unknown,
      }) as LogRecord,
    );
  });

  it("reconnects on its own after its connection is killed, losing no message", async () => {
    await listen().start();
    await caughtUp.until(1);
    const killed = listener.backendPid;
    await nodeA.pool.query("SELECT pg_terminate_backend($1)", [killed]);
    await connection.until(2);
    await accept("while-down", "b");
    await connection.until(3);
    expect(listener.backendPid).not.toBe(killed);
    await accept("after", "b");
    await wakeUps.when((seen) => seen.some((wakeUp) => sessionOf(wakeUp) === "after"));
    // The message sent while it was down was found: by a poll or the catch-up after
    // reconnecting, or (when the reconnect came first) by its notification.
    const found = [
      ...caughtUp.seen.flat(),
      ...wakeUps.seen.map((wakeUp) => sessionOf(wakeUp) as string),
    ];
    expect(found).toContain("while-down");
  });
});

function sessionOf(wakeUp: WakeUp): string | undefined {
  return wakeUp.kind === "outbox" ? undefined : wakeUp.sessionName;
}

describe("parseWakeUp", () => {
  it("reads what sendWakeUp sends, and nothing else", () => {
    expect(parseWakeUp("dispatch_inbox", '{"sessionName":"alice","owner":"b"}')).toEqual({
      kind: "inbox",
      sessionName: ALICE,
      owner: "b",
    });
    expect(parseWakeUp("dispatch_inbox", "not json")).toBeUndefined();
    expect(parseWakeUp("dispatch_inbox", '{"sessionName":"alice"}')).toBeUndefined();
    expect(parseWakeUp("dispatch_reply", '{"sessionName":"alice","node":"b"}')).toBeUndefined();
    expect(
      parseWakeUp("dispatch_reply", '{"sessionName":"alice","node":"b","inboundIds":["7"]}'),
    ).toBeUndefined();
    expect(
      parseWakeUp("dispatch_reply", '{"sessionName":"alice","node":"*","inboundIds":[7,8]}'),
    ).toEqual({ kind: "reply", sessionName: "alice", node: "*", inboundIds: [7, 8] });
    expect(parseWakeUp("dispatch_outbox", '{"node":"mac","channel":"imessage"}')).toEqual({
      kind: "outbox",
      node: "mac",
      channel: "imessage",
    });
    expect(parseWakeUp("dispatch_outbox", '{"node":"mac"}')).toBeUndefined();
    expect(parseWakeUp("other", '{"sessionName":"alice","owner":"b"}')).toBeUndefined();
    expect(parseWakeUp("dispatch_inbox", undefined)).toBeUndefined();
  });
});
