/**
 * The resident memory of a process, for the Sessions view: `/proc/<pid>/status` on Linux,
 * `ps -o rss=` elsewhere (macOS). Null when it cannot be read (the process is gone).
 */
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";

export async function readProcessMemory(pid: number): Promise<number | null> {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  if (process.platform === "linux") {
    const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => undefined);
    return status === undefined ? null : parseProcStatus(status);
  }
  return new Promise((resolve) => {
    execFile("ps", ["-o", "rss=", "-p", String(pid)], { timeout: 2_000 }, (error, stdout) => {
      const kilobytes = error ? Number.NaN : Number.parseInt(stdout.trim(), 10);
      resolve(Number.isFinite(kilobytes) ? kilobytes * 1024 : null);
    });
  });
}

/** `VmRSS:   123456 kB` in a `/proc/<pid>/status` text, in bytes. */
export function parseProcStatus(status: string): number | null {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return match?.[1] === undefined ? null : Number.parseInt(match[1], 10) * 1024;
}
