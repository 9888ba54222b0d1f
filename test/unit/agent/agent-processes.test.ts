import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createAgentProcessFile, looksLikeClaudeCli } from "../../../src/agent/agent-processes.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { isProcessAlive, waitUntil } from "../../support/real-manager.js";

let folder: string;
const started: ChildProcess[] = [];

/** A long-running process in its own group whose command line says `marker`. */
function sleeper(marker: string): ChildProcess {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)", marker], {
    detached: true,
    stdio: "ignore",
  });
  started.push(child);
  return child;
}

beforeEach(async () => {
  folder = await mkdtemp(path.join(tmpdir(), "dispatch-agents-"));
});
afterEach(async () => {
  for (const child of started.splice(0)) child.kill("SIGKILL");
  await rm(folder, { recursive: true, force: true });
});

describe("the agent process file", () => {
  it("ends the agent processes a crashed daemon left, and nothing else", async () => {
    const file = path.join(folder, "agent-processes.json");
    const orphan = sleeper("claude-code-cli");
    const stranger = sleeper("not-an-agent");
    const previous = createAgentProcessFile(file, createMemoryLogger());
    previous.tracker.started(orphan.pid!);
    previous.tracker.started(stranger.pid!);
    await previous.flush();

    const logger = createMemoryLogger();
    const next = createAgentProcessFile(file, logger);
    const ended = await next.reapOrphans();

    expect(ended).toEqual([orphan.pid]);
    await waitUntil(() => !isProcessAlive(orphan.pid!), 5_000, "the orphan to end");
    expect(isProcessAlive(stranger.pid!)).toBe(true);
    expect(logger.records.some((record) => record.message === "orphan-kill")).toBe(true);
    expect(await next.reapOrphans()).toEqual([]); // the file was reset
    await next.flush();
  });

  it("forgets processes that exited, and tells a Claude CLI by its command line", async () => {
    const file = path.join(folder, "agent-processes.json");
    const agent = sleeper("claude");
    const tracker = createAgentProcessFile(file, createMemoryLogger());
    tracker.tracker.started(agent.pid!);
    tracker.tracker.exited(agent.pid!);
    await tracker.flush();
    const reader = createAgentProcessFile(file, createMemoryLogger());
    expect(await reader.reapOrphans()).toEqual([]);
    await reader.flush();
    expect(isProcessAlive(agent.pid!)).toBe(true);
    expect(await looksLikeClaudeCli(agent.pid!)).toBe(true);
    expect(await looksLikeClaudeCli(process.pid)).toBe(false);
  });
});
