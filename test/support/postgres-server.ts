/**
 * A private PostgreSQL server for the tests: Debian's `postgresql` (initdb, pg_ctl) started in a
 * temporary folder on a free loopback port, one per test run, shared by the test files; each file
 * gets a database of its own (`createTestDatabase`).
 *
 * The run's folder comes from `postgres-global-setup.ts`, which stops the server by its pid at the
 * end. The server starts lazily, in the first test file that asks for a database (a run without
 * such a file starts nothing), under a lock file, so two workers never start two servers. The
 * server refuses to run as root: when the tests do, it runs as the `postgres` user (`runuser`) in
 * a folder that user owns.
 *
 * It trades durability for speed (`fsync=off`): the tests kill dispatch, never the server.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chown, open, readFile, rename, rm, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { inject } from "vitest";
import { freePort } from "./daemon-process.js";

const run = promisify(execFile);

/** What `apt-get` and the failure messages name. */
export const INSTALL_HINT = "apt-get install -y postgresql";

/** What a running server's folder records, for the workers that share it and for the teardown. */
export interface PostgresServer {
  /** The postmaster's pid. */
  pid: number;
  port: number;
  /** `postgres://postgres@127.0.0.1:<port>`, without a database. */
  url: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    /** The test run's PostgreSQL folder (`postgres-global-setup.ts`). */
    postgresFolder: string;
  }
}

const SERVER_FILE = "server.json";
const LOCK_FILE = "start.lock";
const LOCK_WAIT_MS = 120_000;

/** The server binaries: Debian's newest `/usr/lib/postgresql/<version>/bin`, or `initdb` on PATH. */
function findBinaries(): { initdb: string; pgCtl: string } {
  const debian = "/usr/lib/postgresql";
  const versions = existsSync(debian)
    ? readdirSync(debian)
        .filter((name) => /^\d+$/.test(name))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const folders = [
    ...versions.map((version) => path.join(debian, version, "bin")),
    ...(process.env.PATH ?? "").split(path.delimiter).filter(Boolean),
  ];
  for (const folder of folders) {
    const initdb = path.join(folder, "initdb");
    const pgCtl = path.join(folder, "pg_ctl");
    if (existsSync(initdb) && existsSync(pgCtl)) return { initdb, pgCtl };
  }
  throw new Error(
    `PostgreSQL is not installed (no initdb and pg_ctl in /usr/lib/postgresql/*/bin or on PATH); ` +
      `the PostgreSQL tests need it: ${INSTALL_HINT}`,
  );
}

/** The user the server runs as: `postgres` when the tests run as root, else the tests' own. */
async function serverUser(): Promise<{ uid: number; gid: number; argv: string[] } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number((await run("id", ["-u", "postgres"])).stdout.trim());
    const gid = Number((await run("id", ["-g", "postgres"])).stdout.trim());
    return { uid, gid, argv: ["runuser", "-u", "postgres", "--"] };
  } catch {
    throw new Error(
      `The tests run as root and PostgreSQL refuses to; there is no postgres user to run it ` +
        `as. Create it (${INSTALL_HINT} does), or run the tests as another user.`,
    );
  }
}

async function runAs(user: { argv: string[] } | undefined, argv: string[]): Promise<void> {
  const [command, ...args] = [...(user?.argv ?? []), ...argv];
  await run(command!, args, { maxBuffer: 16 * 1024 * 1024 });
}

/**
 * Initialises a cluster in `folder/data` and starts it on a free loopback port, its socket in
 * `folder`; resolves once it accepts connections. `folder` must exist and be empty of a cluster.
 */
export async function startPostgresServer(
  folder: string,
  options: { durable?: boolean } = {},
): Promise<PostgresServer> {
  const binaries = findBinaries();
  const user = await serverUser();
  if (user) await chown(folder, user.uid, user.gid);
  const data = path.join(folder, "data");
  const log = path.join(folder, "postgres.log");
  try {
    await runAs(user, [
      binaries.initdb,
      ...["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"],
      "--no-sync",
      "--no-instructions",
    ]);
  } catch (error) {
    throw new Error(`initdb failed in ${data}: ${failureText(error)}`, { cause: error });
  }
  // A port found free can be taken before the server binds it: then another one.
  for (let attempt = 1; ; attempt += 1) {
    const port = await freePort();
    const settings = [
      "-c listen_addresses=127.0.0.1",
      `-p ${port}`,
      `-c unix_socket_directories='${folder}'`,
      // The tests kill dispatch, never the server: durability is traded for speed, unless a
      // benchmark asks for a server that commits as a production one does.
      ...(options.durable === true
        ? []
        : ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]),
      "-c max_connections=200",
    ].join(" ");
    try {
      const start = ["-D", data, "-l", log, "-w", "-t", "60", "-o", settings, "start"];
      await runAs(user, [binaries.pgCtl, ...start]);
    } catch (error) {
      const output = await readFile(log, "utf8").catch(() => "");
      if (attempt < 3 && /could not bind|already in use/i.test(output)) continue;
      const tail = output.slice(-2000);
      throw new Error(`pg_ctl could not start PostgreSQL: ${failureText(error)}\n${tail}`, {
        cause: error,
      });
    }
    const pid = Number((await readFile(path.join(data, "postmaster.pid"), "utf8")).split("\n")[0]);
    return { pid, port, url: `postgres://postgres@127.0.0.1:${port}` };
  }
}

/** Stops the server by its pid (a fast shutdown; SIGKILL after 20 s) and waits for its end. */
export async function stopPostgresServer(pid: number): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, "SIGINT");
  const deadline = Date.now() + 20_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, "SIGKILL");
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The server recorded in a run's folder, if one was started there. */
export function recordedServer(folder: string): PostgresServer | undefined {
  try {
    return JSON.parse(readFileSync(path.join(folder, SERVER_FILE), "utf8")) as PostgresServer;
  } catch {
    return undefined;
  }
}

/**
 * Whether `pid` is a live PostgreSQL postmaster (and not another process that took a dead
 * server's pid): only such a process is ever signalled by a cleanup.
 */
export function isPostmaster(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    return /postgres/.test(readFileSync(`/proc/${pid}/cmdline`, "utf8"));
  } catch {
    return false;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function failureText(error: unknown): string {
  const failure = error as { stderr?: string; message?: string };
  return (failure.stderr?.trim() || failure.message) ?? String(error);
}

let shared: Promise<PostgresServer> | undefined;

/** The run's server, started by whichever worker asks first. */
export function sharedPostgresServer(): Promise<PostgresServer> {
  shared ??= startOnce(inject("postgresFolder"));
  return shared;
}

async function startOnce(folder: string): Promise<PostgresServer> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  const lock = path.join(folder, LOCK_FILE);
  for (;;) {
    const running = recordedServer(folder);
    if (running) return running;
    const handle = await open(lock, "wx").catch((error: NodeJS.ErrnoException) => {
      if (error.code === "EEXIST") return undefined;
      throw error;
    });
    if (handle === undefined) {
      // Another worker is starting it; a worker that died meanwhile leaves its lock to take.
      const holder = Number(await readFile(lock, "utf8").catch(() => ""));
      if (holder > 0 && !isAlive(holder)) await unlink(lock).catch(() => undefined);
      if (Date.now() > deadline) {
        throw new Error(`Timed out waiting for another test worker to start PostgreSQL`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      continue;
    }
    try {
      await handle.writeFile(String(process.pid));
      await handle.close();
      if (recordedServer(folder)) continue;
      await rm(path.join(folder, "data"), { recursive: true, force: true });
      const server = await startPostgresServer(folder);
      const file = path.join(folder, SERVER_FILE);
      await writeFile(`${file}.tmp`, JSON.stringify(server));
      await rename(`${file}.tmp`, file);
      return server;
    } finally {
      await unlink(lock).catch(() => undefined);
    }
  }
}

/** A fresh, empty database on the run's server, for one test file; resolves with its URL. */
export async function createTestDatabase(): Promise<string> {
  return createDatabase(await sharedPostgresServer());
}

/**
 * A fresh, empty database on `server` (the run's, or one a script started itself, such as the
 * cluster soak's); resolves with its URL.
 */
export async function createDatabase(server: PostgresServer): Promise<string> {
  const name = `dispatch_test_${randomBytes(6).toString("hex")}`;
  const client = new pg.Client({ connectionString: `${server.url}/postgres` });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  return `${server.url}/${name}`;
}
