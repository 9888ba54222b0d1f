/**
 * Leases and fencing on PostgreSQL (issue 14): what a cluster's chat ownership
 * (`src/store/postgres/postgres-chat-ownership.ts`) adds to the database's work, on a private
 * server on loopback with fsync on.
 *
 * - **A fenced write against the same write unfenced.** The write is one journal row (a turn's
 *   record in `turns`, a write every turn makes), and the reply's record (`markAnswered`), the
 *   write a cluster's node fences in the message path. Unfenced it is one statement, committed on its
 *   own; fenced (`fencedWrite`) it is `BEGIN`, the lease row taken `FOR UPDATE` and its owner and
 *   epoch checked, the statement, `COMMIT`. The same write in a plain transaction (`BEGIN`, the
 *   statement, `COMMIT`) tells the transaction's round trips apart from the fence's check. The
 *   three take turns write by write, so background load falls on each alike; the server's CPU
 *   (10 ms ticks) is read over blocks of one kind.
 * - **Acquire and renew N leases** (N = 1, 100, 1000): N acquires one after another (a node taking
 *   new chats one at a time), N at once (a take-over of a dead node's chats, over the pool's 10
 *   connections), and one renewal of the N (the lease keeper's round: one statement). The two
 *   ways of acquiring take turns, round by round.
 *
 * Wall time is the client's; CPU is this process's (the driver) and the server's (every
 * PostgreSQL process, from /proc).
 */
import { randomUUID } from "node:crypto";
import { createLogger } from "../../src/logging/logger.js";
import type { Fence, Lease } from "../../src/store/chat-ownership.js";
import { openPostgresDatabase } from "../../src/store/postgres/postgres-database.js";
import { createPostgresChatOwnership } from "../../src/store/postgres/postgres-chat-ownership.js";
import { createPostgresJournal } from "../../src/store/postgres/postgres-journal.js";
import { asSessionName } from "../../src/utils/ids.js";
import { postgresFailure, startBenchPostgres, type BenchPostgres } from "../lib/postgres.js";
import type { BenchContext, Row, Scenario } from "../lib/scenario.js";
import { round, roundSummary, summarize, type Summary } from "../lib/stats.js";

const LEASE_MS = 60_000;

/**
 * The writes compared: a turn's row as one statement, in a plain transaction and fenced; and the
 * reply's record (`markAnswered`: the message answered and the outbox row, in one transaction),
 * unfenced as on one node and fenced as a cluster's node records it (the lease row taken first).
 */
type Kind = "unfenced" | "transaction" | "fenced" | "reply" | "replyFenced";
const SIZES = [1, 100, 1000];

export interface WriteCost {
  samples: number;
  wallMs: Summary;
  /** This process's CPU per write (the driver's work). */
  clientCpuMs: number;
  /** Every PostgreSQL process's CPU per write. */
  serverCpuMs: number;
}

export interface BatchCost {
  rounds: number;
  /** Wall time of the whole batch of N, median over the rounds. */
  wallMs: number;
  perLeaseMs: number;
  clientCpuMs: number;
  serverCpuMs: number;
}

export interface LeaseSizeRun {
  leases: number;
  acquireOneByOne: BatchCost;
  acquireAtOnce: BatchCost;
  renew: BatchCost;
}

export interface LeasesResult {
  write: Record<Kind, WriteCost>;
  /** The fenced write's median less the unfenced one's. */
  fenceOverheadMs: number;
  /** The same for the reply's record. */
  replyFenceOverheadMs: number;
  sizes: LeaseSizeRun[];
}

interface Meter {
  clientUs: number;
  serverMs: number;
}

/** Runs `work` and adds its client and server CPU to `meter`; resolves with its wall time. */
async function metered(
  server: BenchPostgres,
  meter: Meter,
  work: () => Promise<unknown>,
): Promise<number> {
  const serverBefore = await server.cpuMs();
  const clientBefore = process.cpuUsage();
  const started = performance.now();
  await work();
  const wall = performance.now() - started;
  const client = process.cpuUsage(clientBefore);
  meter.clientUs += client.user + client.system;
  meter.serverMs += (await server.cpuMs()) - serverBefore;
  return wall;
}

async function run(context: BenchContext): Promise<LeasesResult | { skipped: string }> {
  let server: BenchPostgres;
  try {
    server = await startBenchPostgres();
  } catch (error) {
    const skipped = postgresFailure(error);
    context.log(`leases: PostgreSQL left out: ${skipped}`);
    return { skipped };
  }
  const logger = createLogger({ level: "silent" });
  try {
    const database = await openPostgresDatabase({ url: await server.createDatabase(), logger });
    try {
      const ownership = createPostgresChatOwnership({ database });
      const { pool } = database;

      // ---- a fenced write against the same write unfenced
      const node = "bench-node";
      const taken = await ownership.acquire(asSessionName("bench-fenced"), node, LEASE_MS);
      if (!taken.acquired) throw new Error("[bench] Could not take the fenced write's lease");
      const fence: Fence = taken.lease;
      const insert = `INSERT INTO turns (chat_id, session_id, message_uuids, ended_at, duration_ms,
        is_error, total_cost_usd, total_tokens, cost_usd) VALUES ($1, $2, $3, $4, 40, false, 0.01, 1200, 0.001)`;
      const values = () => [
        "+15550000001",
        "bench-session",
        JSON.stringify([randomUUID()]),
        Date.now(),
      ];
      // Each kind: what is timed, after what is made ready for it untimed (a message to answer).
      const journal = createPostgresJournal({ database });
      const chatId = "+15550000001";
      const message = async () =>
        (
          await journal.recordInbound({
            channel: "http",
            chatId,
            text: "bench",
            receivedAt: new Date(),
          })
        ).id;
      const reply = { channel: "http", chatId, parts: ["bench reply"] };
      const kinds: Record<
        Kind,
        { ready?: () => Promise<number>; write: (id: number) => Promise<unknown> }
      > = {
        unfenced: { write: () => pool.query(insert, values()) },
        transaction: {
          write: async () => {
            const client = await pool.connect();
            try {
              await client.query("BEGIN");
              await client.query(insert, values());
              await client.query("COMMIT");
            } finally {
              client.release();
            }
          },
        },
        fenced: {
          write: () =>
            ownership.fencedWrite(fence, (transaction) => transaction.query(insert, values())),
        },
        reply: { ready: message, write: (id) => journal.markAnswered([id], reply) },
        replyFenced: {
          ready: message,
          write: (id) => journal.markAnswered([id], reply, { fence }),
        },
      };
      const names = Object.keys(kinds) as Kind[];
      const samples = context.quick ? 60 : 400;
      const block = samples / 4;
      const walls = new Map<Kind, number[]>(names.map((name) => [name, []]));
      const meters = new Map<Kind, Meter>(
        names.map((name) => [name, { clientUs: 0, serverMs: 0 }]),
      );
      const once = async (name: Kind) => kinds[name].write((await kinds[name].ready?.()) ?? 0);
      for (const name of names) for (let index = 0; index < 10; index += 1) await once(name);
      // Wall time and the driver's CPU: the kinds take turns, write by write, in a rotating order.
      for (let index = 0; index < samples; index += 1) {
        for (let offset = 0; offset < names.length; offset += 1) {
          const name = names[(index + offset) % names.length]!;
          const id = (await kinds[name].ready?.()) ?? 0;
          const clientBefore = process.cpuUsage();
          const started = performance.now();
          await kinds[name].write(id);
          walls.get(name)!.push(performance.now() - started);
          const client = process.cpuUsage(clientBefore);
          meters.get(name)!.clientUs += client.user + client.system;
        }
      }
      // The server's CPU, read from /proc in 10 ms ticks: in blocks of one kind, rotated, with
      // the messages to answer recorded before the block.
      for (let roundIndex = 0; roundIndex < 4; roundIndex += 1) {
        for (let offset = 0; offset < names.length; offset += 1) {
          const name = names[(roundIndex + offset) % names.length]!;
          const ids: number[] = [];
          for (let index = 0; index < block; index += 1) {
            ids.push((await kinds[name].ready?.()) ?? 0);
          }
          const serverBefore = await server.cpuMs();
          for (const id of ids) await kinds[name].write(id);
          meters.get(name)!.serverMs += (await server.cpuMs()) - serverBefore;
        }
      }
      const cost = (name: Kind): WriteCost => ({
        samples,
        wallMs: roundSummary(summarize(walls.get(name)!), 2),
        clientCpuMs: round(meters.get(name)!.clientUs / 1000 / samples, 3),
        serverCpuMs: round(meters.get(name)!.serverMs / samples, 3),
      });
      const write = {
        unfenced: cost("unfenced"),
        transaction: cost("transaction"),
        fenced: cost("fenced"),
        reply: cost("reply"),
        replyFenced: cost("replyFenced"),
      };
      context.log(`leases: ${samples} writes of each kind measured`);

      // ---- acquire and renew N leases
      const sizes: LeaseSizeRun[] = [];
      for (const leases of SIZES) {
        const owner = `bench-node-${leases}`;
        const roundsOf = leases === 1 ? (context.quick ? 20 : 100) : leases === 100 ? 5 : 2;
        const names = (label: string, roundIndex: number) =>
          Array.from({ length: leases }, (_, index) =>
            asSessionName(`bench-${label}-${leases}-${roundIndex}-${index}`),
          );
        const acquired = (result: Awaited<ReturnType<typeof ownership.acquire>>): Lease => {
          if (!result.acquired) throw new Error("[bench] A fresh lease was held by another node");
          return result.lease;
        };
        const newCost = (): { meter: Meter; walls: number[] } => ({
          meter: { clientUs: 0, serverMs: 0 },
          walls: [],
        });
        const costOf = (measured: { meter: Meter; walls: number[] }): BatchCost => {
          const times = measured.walls.length;
          const wall = summarize(measured.walls).median;
          return {
            rounds: times,
            wallMs: round(wall, 2),
            perLeaseMs: round(wall / leases, 3),
            clientCpuMs: round(measured.meter.clientUs / 1000 / times, 2),
            serverCpuMs: round(measured.meter.serverMs / times, 1),
          };
        };
        const oneByOne = newCost();
        const atOnce = newCost();
        let held: Lease[] = [];
        // The two ways take turns, round by round, so background load falls on both alike.
        for (let roundIndex = 0; roundIndex < roundsOf; roundIndex += 1) {
          oneByOne.walls.push(
            await metered(server, oneByOne.meter, async () => {
              held = [];
              for (const name of names("one", roundIndex)) {
                held.push(acquired(await ownership.acquire(name, owner, LEASE_MS)));
              }
            }),
          );
          atOnce.walls.push(
            await metered(server, atOnce.meter, () =>
              Promise.all(
                names("once", roundIndex).map(async (name) =>
                  acquired(await ownership.acquire(name, owner, LEASE_MS)),
                ),
              ),
            ),
          );
        }
        const renewal = newCost();
        for (let roundIndex = 0; roundIndex < 20; roundIndex += 1) {
          renewal.walls.push(
            await metered(server, renewal.meter, async () => {
              const renewed = await ownership.renew(owner, held, LEASE_MS);
              if (renewed.length !== leases) {
                throw new Error(`[bench] Renewed ${renewed.length} of ${leases} leases`);
              }
            }),
          );
        }
        const acquireOneByOne = costOf(oneByOne);
        const acquireAtOnce = costOf(atOnce);
        const renew = costOf(renewal);
        sizes.push({ leases, acquireOneByOne, acquireAtOnce, renew });
        context.log(`leases: ${leases} acquired and renewed`);
      }
      return {
        write,
        fenceOverheadMs: round(write.fenced.wallMs.median - write.unfenced.wallMs.median, 2),
        replyFenceOverheadMs: round(write.replyFenced.wallMs.median - write.reply.wallMs.median, 2),
        sizes,
      };
    } finally {
      await database.close();
    }
  } finally {
    await server.stop();
  }
}

function writeValue(cost: WriteCost): string {
  return (
    `${cost.wallMs.median} / ${cost.wallMs.p95} ms, ` +
    `CPU ${cost.clientCpuMs} ms client, ${cost.serverCpuMs} ms server`
  );
}

function batchValue(cost: BatchCost): string {
  return (
    `${cost.wallMs} ms (${cost.perLeaseMs} ms a lease), ` +
    `CPU ${cost.clientCpuMs} ms client, ${cost.serverCpuMs} ms server`
  );
}

function rows(result: LeasesResult | { skipped: string }): Row[] {
  if (!("write" in result))
    return [{ measure: "PostgreSQL", value: `left out: ${result.skipped}` }];
  const { write } = result;
  return [
    {
      measure: `a turn's row, unfenced: one statement (median / p95, ${write.unfenced.samples})`,
      value: writeValue(write.unfenced),
    },
    {
      measure: "the same in a plain transaction: BEGIN, statement, COMMIT",
      value: writeValue(write.transaction),
    },
    {
      measure: "the same fenced: BEGIN, lease row FOR UPDATE, statement, COMMIT",
      value: writeValue(write.fenced),
    },
    {
      measure: "fence's cost at the median (fenced - unfenced)",
      value: `${result.fenceOverheadMs} ms`,
    },
    {
      measure: "a reply's record (markAnswered: message answered + outbox row), unfenced",
      value: writeValue(write.reply),
    },
    {
      measure: "the same fenced, as a cluster node records it (lease row FOR UPDATE first)",
      value: writeValue(write.replyFenced),
    },
    {
      measure: "fence's cost on the reply's record at the median",
      value: `${result.replyFenceOverheadMs} ms`,
    },
    ...result.sizes.flatMap((size) => [
      {
        measure: `acquire ${size.leases}, one after another (median of ${size.acquireOneByOne.rounds})`,
        value: batchValue(size.acquireOneByOne),
      },
      // One lease at once is one lease after another.
      ...(size.leases === 1
        ? []
        : [
            {
              measure: `acquire ${size.leases} at once, 10 connections (median of ${size.acquireAtOnce.rounds})`,
              value: batchValue(size.acquireAtOnce),
            },
          ]),
      {
        measure: `renew ${size.leases}: one statement (median of ${size.renew.rounds})`,
        value: batchValue(size.renew),
      },
    ]),
  ];
}

export const leases: Scenario<LeasesResult | { skipped: string }> = { name: "leases", run, rows };
