import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import path from "node:path";

const REPO = path.resolve(import.meta.dirname, "../..");
const CLI = path.join(REPO, "src/cli/main.ts");

/** A free loopback port: bind port 0, read it, let it go. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Runs the dispatch CLI from source as a child process and collects its output. */
export function runCli(
  args: string[],
  env: NodeJS.ProcessEnv,
  input?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CLI, ...args], { env, cwd: REPO });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

export interface DaemonProcess {
  pid: number;
  port: number;
  token: string;
  env: NodeJS.ProcessEnv;
  output(): string;
  /** Sends `signal` and resolves with the exit code (null when killed by a signal). */
  stop(signal: NodeJS.Signals): Promise<number | null>;
  /**
   * Sends `signal` to the daemon's process group and resolves once the daemon is gone. Only for
   * a daemon started `detached`. Its agent CLIs are not in it: dispatch starts each in a group of
   * its own (`src/agent/cli-process.ts`); `killTree` ends them too.
   */
  killGroup(signal: NodeJS.Signals): Promise<number | null>;
  /**
   * A machine loss: SIGKILLs the daemon's process group and every process below it, each agent
   * CLI with its own process group (`killProcessTree`), and resolves once they are gone.
   * Only for a daemon started `detached`, in a group of its own.
   */
  killTree(): Promise<void>;
  api(method: string, route: string, body?: unknown): Promise<{ status: number; json: unknown }>;
}

export interface StartDaemonOptions {
  /** Gets the pid at once, for a test that must act while the daemon is still starting. */
  onSpawn?: (pid: number) => void;
  /**
   * Runs the daemon in a process group of its own (its pid is the group's id), for `killGroup`,
   * and for `killTree` to end it and everything it started at once, as a machine loss would.
   */
  detached?: boolean;
}

/** Starts `dispatch start` as a real child process and waits until its API answers. */
export async function startDaemonProcess(
  env: NodeJS.ProcessEnv,
  args: string[] = [],
  options: StartDaemonOptions = {},
): Promise<DaemonProcess> {
  const port = Number(env.DISPATCH_PORT);
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    ["--import", "tsx", CLI, "start", ...args],
    {
      env,
      cwd: REPO,
      detached: options.detached === true,
    },
  );
  if (child.pid !== undefined) options.onSpawn?.(child.pid);
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`dispatch exited early (${child.exitCode ?? child.signalCode}):\n${output}`);
    }
    if (Date.now() > deadline) {
      // Not left running behind the failure: its group too, when it has one.
      if (options.detached === true) killProcessTree(child.pid!);
      else child.kill("SIGKILL");
      throw new Error(`dispatch did not come up in 30 s:\n${output}`);
    }
    const ready = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const home = env.DISPATCH_HOME ?? path.join(env.HOME!, "dispatch");
  const token = (await readFile(path.join(home, "state", "api-token"), "utf8")).trim();

  return {
    pid: child.pid!,
    port,
    token,
    env,
    output: () => output,
    stop: async (signal) => {
      child.kill(signal);
      return exited;
    },
    killGroup: async (signal) => {
      if (options.detached !== true) throw new Error("killGroup needs a daemon started detached");
      process.kill(-child.pid!, signal);
      return exited;
    },
    killTree: async () => {
      if (options.detached !== true) throw new Error("killTree needs a daemon started detached");
      const below = killProcessTree(child.pid!);
      await exited;
      await gone(below);
    },
    api: async (method, route, body) => {
      const response = await fetch(`http://127.0.0.1:${port}${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, json: text ? (JSON.parse(text) as unknown) : undefined };
    },
  };
}

/** Sends `signal` to process group `groupId`, or to process `-pid`; gone already is no error. */
function signal(target: number, name: NodeJS.Signals): void {
  try {
    process.kill(target, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/** SIGKILLs process group `groupId` (a detached child's pid); a group already gone is no error. */
export function killProcessGroup(groupId: number): void {
  signal(-groupId, "SIGKILL");
}

interface ProcessEntry {
  pid: number;
  parent: number;
  group: number;
}

/** Every process of this machine with its parent and process group, from Linux's /proc. */
function processTable(): ProcessEntry[] {
  const entries: ProcessEntry[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      entries.push({ pid: Number(name), parent: Number(fields[1]), group: Number(fields[2]) });
    } catch {
      // Ended while the table was read.
    }
  }
  return entries;
}

/** Whether `pid` is a process that runs (a zombie, dead but not reaped, does not). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** The processes below `root`: its children, theirs, and so on. */
export function processesBelow(root: number): ProcessEntry[] {
  const table = processTable();
  const below: ProcessEntry[] = [];
  let parents = new Set([root]);
  while (parents.size > 0) {
    const children = table.filter((entry) => parents.has(entry.parent));
    below.push(...children);
    parents = new Set(children.map((entry) => entry.pid));
  }
  return below;
}

/**
 * A machine loss for a daemon started detached (`pid` is its process group's id): the group
 * SIGSTOPped, so it starts nothing more, then SIGKILLed with every process below it and the
 * process groups they lead. dispatch starts each agent CLI in a process group of its own
 * (`src/agent/cli-process.ts`), so the daemon's group alone would leave them running. Returns
 * the pids of the processes below it.
 */
export function killProcessTree(pid: number): number[] {
  signal(-pid, "SIGSTOP");
  const below = processesBelow(pid);
  const ownGroup = processTable().find((entry) => entry.pid === process.pid)?.group;
  const groups = new Set([pid, ...below.map((entry) => entry.group)]);
  for (const group of groups) if (group !== ownGroup) signal(-group, "SIGKILL");
  for (const entry of below) signal(entry.pid, "SIGKILL");
  return below.map((entry) => entry.pid);
}

/** Resolves once none of `pids` runs (a SIGKILL takes a moment to end a process), or after 10 s. */
async function gone(pids: readonly number[]): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (pids.some(isRunning) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Runs `dispatch start` expecting it to refuse: resolves with its exit code and output once it
 * exits. Should it come up instead (its API answers), it is killed and this rejects.
 */
export async function runDaemonExpectingRefusal(
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", CLI, "start"], { env, cwd: REPO });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  let code: number | null | undefined;
  void exited.then((exitCode) => (code = exitCode));
  while (code === undefined) {
    const up = await fetch(`http://127.0.0.1:${env.DISPATCH_PORT}/healthz`).then(
      (response) => response.ok,
      () => false,
    );
    if (up) {
      child.kill("SIGKILL");
      await exited;
      throw new Error(`dispatch started although it should have refused:\n${output}`);
    }
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 100))]);
  }
  return { code, output };
}
