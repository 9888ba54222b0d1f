import { readFile } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { daemonEnv } from "../support/daemon-home.js";
import { isProcessAlive, makeTempHome, waitUntil } from "../support/real-manager.js";

/**
 * Regression: a daemon with no sessions took 18 s to stop after SIGTERM, silent after
 * `manager-stop`. Its shutdown waited for the spare agent process that was still starting, and a
 * start on a loaded machine takes that long (up to the SDK's 60 s initialize timeout). Here the
 * spare is frozen with SIGSTOP while it starts, which is a start that never ends.
 */
let model: StandInModel;
let home: { home: string; remove(): Promise<void> };
let daemon: DaemonProcess | undefined;
let spare: number | undefined;

beforeAll(async () => {
  model = await startStandInModel();
  home = await makeTempHome();
});

afterAll(async () => {
  if (spare !== undefined && isProcessAlive(spare)) process.kill(spare, "SIGKILL");
  if (daemon && isProcessAlive(daemon.pid)) await daemon.stop("SIGKILL");
  await model.close();
  await home.remove();
});

/** The pids of a process's children, from /proc (Linux). */
async function childrenOf(pid: number): Promise<number[]> {
  try {
    const text = await readFile(`/proc/${pid}/task/${pid}/children`, "utf8");
    return text.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Whether a child is the Claude CLI already. A child caught between fork and exec still runs
 * node's code, and stopping it there would block the daemon itself (spawn waits for the exec).
 */
async function isClaudeCli(pid: number): Promise<boolean> {
  const commandLine = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  return commandLine.includes("claude-agent-sdk");
}

describe("dispatch start, stopped with SIGTERM", () => {
  it("exits at once while its spare agent process is still starting, and leaves none behind", async () => {
    let daemonPid: number | undefined;
    // Freeze the spare CLI the moment the daemon spawns it, long before it could be ready.
    const frozen = (async () => {
      await waitUntil(() => daemonPid !== undefined, 30_000, "the daemon's pid");
      for (;;) {
        for (const child of await childrenOf(daemonPid!)) {
          if (await isClaudeCli(child)) {
            process.kill(child, "SIGSTOP");
            return child;
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    daemon = await startDaemonProcess(
      await daemonEnv(home.home, model.url, { DISPATCH_LOG_LEVEL: "debug" }),
      [],
      { onSpawn: (pid) => (daemonPid = pid) },
    );
    spare = await frozen;

    const code = await daemon.stop("SIGTERM");

    const output = daemon.output();
    // The spare really was caught starting: it never became ready.
    expect(output).not.toContain('"msg":"spare-ready"');
    expect(code).toBe(0);
    const stopped = output.indexOf('"msg":"daemon-stopped"');
    expect(output.indexOf('"msg":"manager-stop"')).toBeGreaterThan(-1);
    expect(stopped).toBeGreaterThan(output.indexOf('"msg":"manager-stop"'));
    // Nothing after the stop: no warning about a spare that failed or is retried.
    expect(output.slice(stopped)).not.toMatch(/spare prewarm failed|retry/);
    await waitUntil(() => !isProcessAlive(spare!), 5_000, "the frozen spare to be gone");
  }, 45_000);
});
