/**
 * Crash safety of the registry file: a writer killed with SIGKILL at any moment leaves a file
 * that parses and holds every change it reported durable (and at most one more).
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asChatId } from "../../src/utils/ids.js";
import { createMemoryLogger } from "../support/memory-logger.js";
import { openJsonFileRegistry } from "../../src/store/json-file-registry.js";
import { runAndKill } from "../support/run-and-kill.js";

const ROUNDS = 24;
const COUNTER_CHAT = asChatId("counter@example.com");
const WRITER = join(import.meta.dirname, "..", "support", "registry-writer.ts");

interface Round {
  lastCommitted: number;
  leftovers: string[];
}

/** Runs the writer, kills it once it has committed for `killAfterMs`, and reports its last commit. */
async function writeAndKill(path: string, killAfterMs: number): Promise<number> {
  const stdout = await runAndKill(WRITER, [path], { readyMark: "committed ", killAfterMs });
  const commits = [...stdout.matchAll(/^committed (\d+)$/gm)].map((match) => Number(match[1]));
  if (commits.length === 0) throw new Error(`the writer printed no commit: ${stdout}`);
  return commits.at(-1)!;
}

describe("registry file under SIGKILL", () => {
  let folder: string;
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), "dispatch-registry-crash-"));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it(`always parses and holds the last committed change (${ROUNDS} kills)`, async () => {
    const path = join(folder, "sessions.json");
    const rounds: Round[] = [];
    let previous = 0;
    for (let round = 0; round < ROUNDS; round += 1) {
      const killAfterMs = 20 + Math.floor(Math.random() * 131);
      const lastCommitted = await writeAndKill(path, killAfterMs);
      const leftovers = (await readdir(folder)).filter(
        (name) => name !== "sessions.json" && name !== "sessions.json.last-good",
      );

      // The raw file parses on its own ...
      const raw = JSON.parse(await readFile(path, "utf8")) as Record<string, { turns: number }>;
      const onDisk = raw[COUNTER_CHAT]?.turns ?? -1;
      expect(onDisk, `round ${round}`).toBeGreaterThanOrEqual(lastCommitted);
      expect(onDisk, `round ${round}`).toBeLessThanOrEqual(lastCommitted + 1);
      expect(lastCommitted, `round ${round} made progress`).toBeGreaterThan(previous);
      previous = onDisk;

      // ... and the registry loads it with no fallback, removing a killed write's temp file.
      const logger = createMemoryLogger();
      const registry = await openJsonFileRegistry({ path, logger });
      expect(registry.get(COUNTER_CHAT)?.turns).toBe(onDisk);
      expect(logger.records.filter((record) => record.level === "error")).toEqual([]);
      await registry.close();
      const after = await readdir(folder);
      expect(after.sort()).toEqual(["sessions.json", "sessions.json.last-good"]);
      rounds.push({ lastCommitted, leftovers });
    }
    const withLeftovers = rounds.filter((round) => round.leftovers.length > 0).length;
    console.info(
      `registry crash: ${ROUNDS} kills, last counter ${previous}, ${withLeftovers} left a temp file`,
    );
  }, 180_000);
});
