import { spawn } from "node:child_process";
import path from "node:path";

export interface RunAndKillOptions {
  /** What the script prints once it is at work: the kill is timed from there, not from tsx's compile. */
  readyMark: string;
  /** How long after `readyMark` the script is killed with SIGKILL. */
  killAfterMs: number;
}

/**
 * Runs a TypeScript script (through tsx) as a child process, kills it with SIGKILL
 * `killAfterMs` after it printed `readyMark`, and resolves with all it printed on stdout. Rejects
 * when it ends any other way, or does not get ready within 30 s.
 */
export function runAndKill(
  script: string,
  args: string[],
  options: RunAndKillOptions,
): Promise<string> {
  const { readyMark, killAfterMs } = options;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timer: NodeJS.Timeout | undefined;
    const startup = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      if (timer === undefined && stdout.includes(readyMark)) {
        clearTimeout(startup);
        timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
      }
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    // "close": the child is gone and its stdout is read to the end.
    child.on("close", (_code, signal) => {
      clearTimeout(startup);
      if (signal !== "SIGKILL" || !stdout.includes(readyMark)) {
        const name = path.basename(script);
        reject(
          new Error(
            `${name} ended with ${signal ?? "no signal"} before it printed ${JSON.stringify(readyMark)}: ${stderr}`,
          ),
        );
        return;
      }
      resolve(stdout);
    });
  });
}
