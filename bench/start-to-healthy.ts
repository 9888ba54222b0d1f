/**
 * How long `npm start` takes from the command to a daemon that answers `/healthz`: cold (no
 * `dist/`, so it builds everything first) and warm (`dist/` up to date, so the build step only
 * checks). Each run uses a fresh home and a free port and ends with SIGTERM to the whole
 * process group. Not a test; the figures go into docs/performance.md.
 *
 *   npx tsx bench/start-to-healthy.ts              3 cold and 5 warm runs
 *   npx tsx bench/start-to-healthy.ts --cold 1 --warm 10 --script demo
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

const REPO = path.resolve(import.meta.dirname, "..");

const { values } = parseArgs({
  options: {
    cold: { type: "string", default: "3" },
    warm: { type: "string", default: "5" },
    script: { type: "string", default: "start" },
  },
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Milliseconds from spawning `npm <script>` to the first 200 from /healthz. */
async function startToHealthy(script: string): Promise<number> {
  const home = await mkdtemp(path.join(os.tmpdir(), "dispatch-start-"));
  const port = await freePort();
  const args = script === "start" ? ["start"] : ["run", script];
  const startedAt = performance.now();
  const child = spawn("npm", args, {
    cwd: REPO,
    env: { PATH: process.env.PATH, HOME: home, DISPATCH_PORT: String(port) },
    stdio: "ignore",
    detached: true,
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`npm ${args.join(" ")} exited early`);
      const healthy = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (response) => response.ok,
        () => false,
      );
      if (healthy) return performance.now() - startedAt;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    process.kill(-child.pid!, "SIGTERM");
    await exited;
    // npm may exit before the daemon it started has finished its shutdown: wait for the group.
    while (groupAlive(child.pid!)) await new Promise((resolve) => setTimeout(resolve, 50));
    await rm(home, { recursive: true, force: true });
  }
}

function groupAlive(groupId: number): boolean {
  try {
    process.kill(-groupId, 0);
    return true;
  } catch {
    return false;
  }
}

function summary(label: string, times: number[]): string {
  if (times.length === 0) return `${label}: not run`;
  const sorted = [...times].sort((left, right) => left - right);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  const shown = times.map((time) => (time / 1000).toFixed(2)).join(", ");
  return `${label}: median ${(median / 1000).toFixed(2)} s (runs: ${shown} s)`;
}

const cold: number[] = [];
for (let run = 0; run < Number(values.cold); run += 1) {
  await rm(path.join(REPO, "dist"), { recursive: true, force: true });
  cold.push(await startToHealthy(values.script));
}
const warm: number[] = [];
for (let run = 0; run < Number(values.warm); run += 1) {
  warm.push(await startToHealthy(values.script));
}
console.log(
  `npm ${values.script === "start" ? "start" : `run ${values.script}`}, start to healthy`,
);
console.log(`  ${summary("cold (no dist/)", cold)}`);
console.log(`  ${summary("warm (dist/ up to date)", warm)}`);
console.log(
  `  load average ${os
    .loadavg()
    .map((load) => load.toFixed(2))
    .join(" ")}, ${os.cpus().length} CPUs`,
);
