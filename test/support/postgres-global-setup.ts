/**
 * Vitest global setup: a folder for the run's PostgreSQL server (started lazily by the first test
 * file that needs it, `postgres-server.ts`), stopped by its pid and removed at the end. Folders of
 * earlier runs that died without their teardown (a killed vitest) are cleaned up first.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { isPostmaster, recordedServer, stopPostgresServer } from "./postgres-server.js";

const PREFIX = "dispatch-pg-";
const OWNER_FILE = "owner.pid";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await removeAbandoned();
  const folder = await mkdtemp(path.join(tmpdir(), PREFIX));
  await writeFile(path.join(folder, OWNER_FILE), String(process.pid));
  project.provide("postgresFolder", folder);
  return async () => {
    const server = recordedServer(folder);
    if (server) await stopPostgresServer(server.pid);
    await rm(folder, { recursive: true, force: true });
  };
}

/**
 * Stops and removes the servers of runs whose vitest is gone. A recorded pid is signalled only
 * while it is a postmaster (Linux's /proc says so), never a process that took a dead one's pid.
 */
async function removeAbandoned(): Promise<void> {
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(PREFIX)) continue;
    const folder = path.join(tmpdir(), name);
    const owner = Number(await readFile(path.join(folder, OWNER_FILE), "utf8").catch(() => ""));
    if (!(owner > 0) || isRunning(owner)) continue;
    const server = recordedServer(folder);
    if (server && isPostmaster(server.pid)) await stopPostgresServer(server.pid);
    await rm(folder, { recursive: true, force: true });
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
