/**
 * The Claude CLI child process as we start it for the SDK (`spawnClaudeCodeProcess`), and how we
 * wait for it to end.
 */
import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from "node:child_process";
import type { SpawnOptions } from "@anthropic-ai/claude-agent-sdk";
import type { ClaudeSdkAgentDeps } from "./claude-sdk-agent.js";
import { killProcessTree } from "./process-tree.js";

/** How much of a CLI's stderr is kept to explain its failure. */
export const STDERR_TAIL_CHARS = 4_000;

/**
 * Our own spawn: we need the pid for health checks and a process group so that close() ends the
 * CLI's own children (shells, MCP servers) too.
 */
export function spawnTrackedCli(
  deps: ClaudeSdkAgentDeps,
  spawnOptions: SpawnOptions,
  onStderr: (chunk: string) => void,
): ChildProcessWithoutNullStreams {
  const cli = spawn(spawnOptions.command, spawnOptions.args, {
    cwd: spawnOptions.cwd,
    env: spawnOptions.env,
    stdio: ["pipe", "pipe", "pipe"],
    detached: true,
  });
  cli.stderr.setEncoding("utf8");
  cli.stderr.on("data", onStderr);
  spawnOptions.signal.addEventListener("abort", () => killProcessTree(cli, "SIGTERM"));
  const pid = cli.pid;
  if (pid !== undefined) {
    deps.processes?.started(pid);
    cli.once("exit", () => deps.processes?.exited(pid));
  }
  return cli;
}

export function waitForExit(child: ChildProcess, timeoutMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      killProcessTree(child, "SIGKILL");
      resolve();
    }, timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
