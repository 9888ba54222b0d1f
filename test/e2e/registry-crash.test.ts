/**
 * Crash safety of the registry: a writer killed with SIGKILL at any moment leaves rows that hold
 * every change it reported durable (and at most one more), and a sessions.json export that
 * parses.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asChatId } from "../../src/utils/ids.js";
import { openHomeRegistry, readRegistryRows } from "../support/home-registry.js";
import { createMemoryLogger } from "../support/memory-logger.js";
import { runAndKill } from "../support/run-and-kill.js";

const ROUNDS = 24;
const COUNTER_CHAT = asChatId("counter@example.com");
const WRITER = join(import.meta.dirname, "..", "support", "registry-writer.ts");

interface Round {
  lastCommitted: number;
  leftovers: string[];
}

/**
 * Starts the writer, waits for its first commit (so the kill lands while it writes, not while
 * tsx compiles), kills it after `killAfterMs` and reports the last commit it printed.
 */
async function writeAndKill(folder: string, killAfterMs: number): Promise<number> {
  const stdout = await runAndKill(WRITER, [folder], { readyMark: "committed ", killAfterMs });
  const commits = [...stdout.matchAll(/^committed (\d+)$/gm)].map((match) => Number(match[1]));
  if (commits.length === 0) throw new Error(`the writer printed no commit: ${stdout}`);
  return commits.at(-1)!;
}

describe("registry rows under SIGKILL", () => {
  let folder: string;
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), "dispatch-registry-crash-"));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it(`hold the last committed change, and the export always parses (${ROUNDS} kills)`, async () => {
    const stateDir = join(folder, "dispatch", "state");
    const path = join(stateDir, "sessions.json");
    const rounds: Round[] = [];
    let previous = 0;
    for (let round = 0; round < ROUNDS; round += 1) {
      const killAfterMs = 20 + Math.floor(Math.random() * 131);
      const lastCommitted = await writeAndKill(folder, killAfterMs);
      const leftovers = (await readdir(stateDir)).filter(
        (name) =>
          name.startsWith("sessions.json") &&
          name !== "sessions.json" &&
          name !== "sessions.json.source",
      );

      // The rows hold every change reported durable, a new session id with it ...
      const rows = readRegistryRows(folder);
      const onDisk = rows[COUNTER_CHAT]?.turns ?? -1;
      expect(onDisk, `round ${round}`).toBeGreaterThanOrEqual(lastCommitted);
      expect(onDisk, `round ${round}`).toBeLessThanOrEqual(lastCommitted + 1);
      expect(rows[COUNTER_CHAT]?.session_id, `round ${round}`).toBe(`session-${onDisk}`);
      expect(lastCommitted, `round ${round} made progress`).toBeGreaterThan(previous);
      previous = onDisk;

      // ... the export parses on its own, trailing the rows at most ...
      const raw = JSON.parse(await readFile(path, "utf8")) as Record<string, { turns: number }>;
      expect(raw[COUNTER_CHAT]?.turns ?? 0, `round ${round}`).toBeLessThanOrEqual(onDisk);

      // ... and the registry opens with no error, removing a killed export's temp file.
      const logger = createMemoryLogger();
      const registry = await openHomeRegistry(folder, logger);
      expect(registry.get(COUNTER_CHAT)?.turns).toBe(onDisk);
      expect(logger.records.filter((record) => record.level === "error")).toEqual([]);
      await registry.close();
      const exported = JSON.parse(await readFile(path, "utf8")) as Record<
        string,
        { turns: number }
      >;
      expect(exported[COUNTER_CHAT]?.turns).toBe(onDisk);
      const after = (await readdir(stateDir)).filter((name) => name.startsWith("sessions.json"));
      // No temp file left, and never a copy kept aside: the file is the export of these rows.
      expect(after.sort()).toEqual(["sessions.json", "sessions.json.source"]);
      rounds.push({ lastCommitted, leftovers });
    }
    const withLeftovers = rounds.filter((round) => round.leftovers.length > 0).length;
    console.info(
      `registry crash: ${ROUNDS} kills, last counter ${previous}, ${withLeftovers} left a temp file`,
    );
  }, 180_000);
});
