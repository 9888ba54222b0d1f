import type { ChildProcess } from "node:child_process";

/**
 * Signals the whole process group of a child started with `detached: true`, so tools the CLI
 * started (shells, MCP servers) end with it. Errors mean the group is already gone.
 */
export function killProcessTree(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // Already exited.
    }
  }
}
