/**
 * A private PostgreSQL server for the scenarios that run dispatch on PostgreSQL: Debian's
 * `postgresql` started in a temporary folder on a free loopback port by the tests' own starter
 * (`test/support/postgres-server.ts`; as the `postgres` user when the benchmark runs as root),
 * with fsync on, as a production server commits. Each run gets an empty database of its own.
 * `stop()` stops the server by its pid and removes its folder.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { startPostgresServer, stopPostgresServer } from "../../test/support/postgres-server.js";
import { cpuMs, descendantsOf } from "./process-tree.js";

export interface BenchPostgres {
  /** `postgres://postgres@127.0.0.1:<port>`, without a database. */
  url: string;
  /** A new, empty database; resolves with its URL. */
  createDatabase(): Promise<string>;
  /**
   * CPU ms of the whole server so far: the postmaster, its live backends and helpers, and the
   * backends it has reaped (a connection's backend ends with it).
   */
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts the server, or rejects with a one-line reason (PostgreSQL not installed, say). */
export async function startBenchPostgres(): Promise<BenchPostgres> {
  const folder = await mkdtemp(path.join(os.tmpdir(), "dispatch-bench-pg-"));
  let server: Awaited<ReturnType<typeof startPostgresServer>>;
  try {
    server = await startPostgresServer(folder, { durable: true });
  } catch (error) {
    await rm(folder, { recursive: true, force: true });
    throw error;
  }
  return {
    url: server.url,
    async createDatabase() {
      const name = `dispatch_bench_${randomBytes(6).toString("hex")}`;
      const client = new pg.Client({ connectionString: `${server.url}/postgres` });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `${server.url}/${name}`;
    },
    async cpuMs() {
      const live = await descendantsOf(server.pid);
      const parts = await Promise.all(live.map((info) => cpuMs(info.pid)));
      return (await cpuMs(server.pid, true)) + parts.reduce((sum, value) => sum + value, 0);
    },
    async stop() {
      await stopPostgresServer(server.pid);
      await rm(folder, { recursive: true, force: true });
    },
  };
}

/** The first line of why the server could not start, for the log and the results. */
export function postgresFailure(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
}
