import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import writeFileAtomic from "write-file-atomic";
import { describeError } from "../utils/errors.js";
import type { Logger } from "../logging/logger.js";

/** Receives the pid of every agent process the adapter starts and sees exit. */
export interface AgentProcessTracker {
  started(pid: number): void;
  exited(pid: number): void;
}

/**
 * The pids of the agent processes this daemon started, kept in a small file so that after a
 * crash of the daemon the next start can find the ones still running and end them. Each agent
 * runs in its own process group (its pid), so ending the group ends its tools too.
 */
export function createAgentProcessFile(path: string, logger: Logger) {
  const live = new Set<number>();
  let writing: Promise<void> = Promise.resolve();

  const save = () => {
    const content = JSON.stringify({ daemon_pid: process.pid, agent_pids: [...live] }) + "\n";
    writing = writing
      .then(() => writeFileAtomic(path, content, { mode: 0o600, fsync: false }))
      .catch((error: unknown) =>
        logger.warn("agent-process-file-write-failed", { path, cause: describeError(error) }),
      );
  };

  const tracker: AgentProcessTracker = {
    started(pid) {
      live.add(pid);
      save();
    },
    exited(pid) {
      if (live.delete(pid)) save();
    },
  };

  return {
    tracker,
    /** Waits for pending writes (for shutdown and tests). */
    flush: () => writing,
    /**
     * Ends the agent process groups a previous daemon left running. Only processes that still
     * look like a Claude CLI are touched: a recycled pid belonging to something else is left alone.
     */
    async reapOrphans(
      isAgentProcess: (pid: number) => Promise<boolean> = looksLikeClaudeCli,
    ): Promise<number[]> {
      let recorded: { daemon_pid?: number; agent_pids?: unknown };
      try {
        recorded = JSON.parse(await readFile(path, "utf8")) as typeof recorded;
      } catch {
        return [];
      }
      const pids = Array.isArray(recorded.agent_pids)
        ? recorded.agent_pids.filter(
            (pid): pid is number => Number.isInteger(pid) && (pid as number) > 1,
          )
        : [];
      const ended: number[] = [];
      for (const pid of pids) {
        if (!isAlive(pid) || !(await isAgentProcess(pid))) continue;
        try {
          process.kill(-pid, "SIGKILL");
        } catch {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            continue;
          }
        }
        ended.push(pid);
      }
      if (ended.length > 0)
        logger.warn("orphan-kill", { pids: ended, previousDaemon: recorded.daemon_pid });
      save(); // the file now lists only this daemon's processes (none yet)
      return ended;
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const execFileAsync = promisify(execFile);

/** The process's command line mentions claude (the CLI binary or its package). */
export async function looksLikeClaudeCli(pid: number): Promise<boolean> {
  try {
    const commandLine =
      process.platform === "linux"
        ? (await readFile(`/proc/${pid}/cmdline`, "utf8")).replaceAll("\0", " ")
        : (await execFileAsync("ps", ["-o", "command=", "-p", String(pid)])).stdout;
    return /claude/i.test(commandLine);
  } catch {
    return false;
  }
}
