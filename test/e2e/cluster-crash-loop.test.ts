/**
 * The crash loop on a cluster, short (issue 14): three daemons on one PostgreSQL database, a few
 * contacts sending numbered messages to nodes picked at random, some in bursts that steer a
 * running turn, while a node picked at random is killed with SIGKILL (its process group and its
 * agent CLIs'), its chats taken over by the others, and started again. Every message must be
 * answered exactly once and each session's context must hold its contact's messages in order.
 * The long run is `npm run soak -- --nodes 3`; `SOAK_SEED` repeats a run's random choices.
 */
import { describe, expect, it } from "vitest";
import { runClusterCrashLoop } from "../soak/cluster-crash-loop.js";
import { formatClusterReport } from "../soak/report.js";
import { createTestDatabase } from "../support/postgres-server.js";

const NODES = 3;
const KILLS = 2;
const CONTACTS = 4;

describe("cluster crash loop", () => {
  it(`answers every message exactly once, in order, across ${KILLS} kills of a node's process group`, async () => {
    const seed = Number(process.env.SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const lines: string[] = [];
    const result = await runClusterCrashLoop({
      nodes: NODES,
      kills: KILLS,
      contacts: CONTACTS,
      seed,
      leaseSeconds: 3,
      databaseUrl: await createTestDatabase(),
      killAfterMs: { min: 2_000, max: 5_000 },
      thinkMs: { min: 100, max: 800 },
      replyDelayMaxMs: 1_000,
      steering: { chance: 0.3, messages: { min: 1, max: 3 }, turnMs: { min: 1_000, max: 2_000 } },
      drainMs: 120_000,
      log: (line) => lines.push(line),
    });
    const report = formatClusterReport(result);
    console.log(`${lines.join("\n")}\n${report}`);

    expect(result.verdict.problems, `seed ${seed}:\n${report}`).toEqual([]);
    expect(result.verdict.lost).toBe(0);
    expect(result.verdict.duplicated).toBe(0);
    expect(result.verdict.answered).toBe(result.verdict.sent);
    expect(result.verdict.sent).toBeGreaterThanOrEqual(CONTACTS);
    expect(result.kills).toHaveLength(KILLS);
    // Each session a killed node ran was taken over by another node, which logged it.
    const sessionsKilled = result.kills.reduce((sum, kill) => sum + kill.sessions, 0);
    expect(result.failoverMs.length).toBeGreaterThanOrEqual(sessionsKilled);
  }, 480_000);
});
