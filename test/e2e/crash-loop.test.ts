/**
 * The crash loop, short: a few contacts send numbered messages over HTTP, some in bursts that
 * steer a running turn, while the real daemon is killed with SIGKILL at random moments and
 * started again; every message must be answered exactly once and each session's context must
 * hold its contact's messages in order. The long
 * run is `npm run soak` (`test/soak/run-soak.ts`); `SOAK_SEED` repeats a run's random choices.
 */
import { describe, expect, it } from "vitest";
import { runCrashLoop } from "../soak/crash-loop.js";
import { formatReport } from "../soak/report.js";

const RESTARTS = 4;
const CONTACTS = 5;

describe("crash loop", () => {
  it(`answers every message exactly once, in order, across ${RESTARTS} SIGKILL restarts`, async () => {
    const seed = Number(process.env.SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const lines: string[] = [];
    const result = await runCrashLoop({
      restarts: RESTARTS,
      contacts: CONTACTS,
      seed,
      killAfterMs: { min: 1_500, max: 5_000 },
      thinkMs: { min: 100, max: 800 },
      replyDelayMaxMs: 1_000,
      steering: { chance: 0.3, messages: { min: 1, max: 4 }, turnMs: { min: 1_000, max: 2_000 } },
      drainMs: 90_000,
      log: (line) => lines.push(line),
    });
    const report = formatReport(result);
    console.log(`${lines.join("\n")}\n${report}`);

    expect(result.verdict.problems, `seed ${seed}:\n${report}`).toEqual([]);
    expect(result.verdict.lost).toBe(0);
    expect(result.verdict.duplicated).toBe(0);
    expect(result.verdict.answered).toBe(result.verdict.sent);
    // Every contact got messages through, so the kills landed under load.
    expect(result.verdict.sent).toBeGreaterThanOrEqual(CONTACTS);
    expect(lines.filter((line) => line.startsWith("kill "))).toHaveLength(RESTARTS);
  }, 240_000);
});
