/**
 * Crash safety of the journal: a writer killed with SIGKILL at any moment leaves a database that
 * passes quick_check, holds every transaction it reported committed (and at most one more), keeps
 * the channel cursor in step with the messages, and still answers a redelivery as a duplicate.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryLogger } from "../support/memory-logger.js";
import { openStateDatabase } from "../../src/store/sqlite-database.js";
import { createSqliteJournal } from "../../src/store/sqlite-journal.js";
import { runAndKill } from "../support/run-and-kill.js";

const ROUNDS = 20;
const CHANNEL = "crash-test";
const WRITER = join(import.meta.dirname, "..", "support", "journal-writer.ts");
const STEPS = ["received", "delivered", "answered", "sent"] as const;
type Step = (typeof STEPS)[number];

interface Commit {
  n: number;
  step: Step;
}

/**
 * Runs the writer, kills it once it has committed for `killAfterMs` and returns every commit it
 * printed.
 */
async function writeAndKill(path: string, killAfterMs: number): Promise<Commit[]> {
  const stdout = await runAndKill(WRITER, [path], { readyMark: "committed ", killAfterMs });
  const commits = [...stdout.matchAll(/^committed (\d+) (\w+)$/gm)].map((match) => ({
    n: Number(match[1]),
    step: match[2] as Step,
  }));
  if (commits.length === 0) throw new Error(`the writer printed no commit: ${stdout}`);
  return commits;
}

interface Row {
  n: number;
  status: string;
  parts: string;
}

describe("journal under SIGKILL", () => {
  let folder: string;
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), "dispatch-journal-crash-"));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it(`keeps every committed transaction and the cursor in step (${ROUNDS} kills)`, async () => {
    const path = join(folder, "state", "journal.db");
    let previous = 0;
    let beyondPrinted = 0;
    for (let round = 0; round < ROUNDS; round += 1) {
      const killAfterMs = 10 + Math.floor(Math.random() * 91);
      const commits = await writeAndKill(path, killAfterMs);
      const label = `round ${round} (killed ${killAfterMs} ms after its first commit)`;
      // The highest message the writer said it touched, and the furthest step it printed for it.
      const last = Math.max(...commits.map((commit) => commit.n));
      const lastStep = Math.max(
        ...commits
          .filter((commit) => commit.n === last)
          .map((commit) => STEPS.indexOf(commit.step)),
      );

      const logger = createMemoryLogger();
      const db = openStateDatabase({ path, logger }); // runs quick_check: throws when damaged
      try {
        expect(db.pragma("quick_check", { simple: true }), label).toBe("ok");
        expect(db.pragma("foreign_key_check"), label).toEqual([]);
        const orphans = db
          .prepare(
            `SELECT count(*) FROM outbox LEFT JOIN inbound ON inbound.id = outbox.inbound_id
             WHERE inbound.id IS NULL`,
          )
          .pluck()
          .get();
        expect(orphans, `${label}: outbox rows without their message`).toBe(0);

        const rows = db
          .prepare(
            `SELECT CAST(substr(inbound.external_id, 3) AS INTEGER) AS n, inbound.status,
               coalesce(group_concat(outbox.part || ':' || outbox.status, ','), '') AS parts
             FROM inbound LEFT JOIN outbox ON outbox.inbound_id = inbound.id
             GROUP BY inbound.id ORDER BY n`,
          )
          .all() as Row[];
        const journal = createSqliteJournal({ db });
        const cursor = Number(await journal.cursor(CHANNEL));
        const highest = rows.at(-1)?.n ?? 0;

        // The cursor is the highest message inserted: it moved in the same transactions.
        expect(cursor, label).toBe(highest);
        // Every message up to it exists, once: no gap, no double insert after a restart.
        expect(
          rows.map((row) => row.n),
          label,
        ).toEqual(Array.from({ length: highest }, (_unused, index) => index + 1));
        // Everything printed is there; at most one more transaction committed unprinted.
        expect(highest, label).toBeGreaterThanOrEqual(last);
        expect(highest, label).toBeLessThanOrEqual(last + 1);
        expect(last, `${label} made progress`).toBeGreaterThanOrEqual(previous);
        previous = last;

        const rank = (row: Row) => {
          if (row.status === "answered") return row.parts.includes("0:sent") ? 3 : 2;
          return STEPS.indexOf(row.status as Step);
        };
        for (const row of rows) {
          if (row.n < last) {
            expect(row, `${label}: message ${row.n}`).toEqual({
              n: row.n,
              status: "answered",
              parts: "0:sent,1:pending",
            });
          }
        }
        const lastRow = rows.find((row) => row.n === last)!;
        expect(rank(lastRow), `${label}: message ${last}`).toBeGreaterThanOrEqual(lastStep);
        expect(rank(lastRow), `${label}: message ${last}`).toBeLessThanOrEqual(lastStep + 1);
        if (rank(lastRow) > lastStep || highest > last) beyondPrinted += 1;

        // A redelivery of the last message is a duplicate, answered with the recorded reply.
        const again = await journal.recordInbound({
          channel: CHANNEL,
          chatId: "+15550000000",
          text: "redelivered",
          externalId: `m-${last}`,
          receivedAt: new Date(),
        });
        expect(again.duplicate, label).toBe(true);
        if (again.status === "answered") {
          expect(again.reply, label).toEqual([`reply ${last} part 0`, `reply ${last} part 1`]);
        }
        expect(logger.records.filter((record) => record.level === "error")).toEqual([]);
        await journal.close();
      } finally {
        if (db.open) db.close();
      }
    }
    expect(previous).toBeGreaterThan(0);
    console.info(
      `journal crash: ${ROUNDS} kills, ${previous} messages, ` +
        `${beyondPrinted} kills found one transaction more than printed (killed after its write, ` +
        `mostly during its fsync: a process crash keeps what was written)`,
    );
  }, 240_000);
});
