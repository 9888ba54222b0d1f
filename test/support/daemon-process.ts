import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
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
   * Sends `signal` to the daemon's whole process group, its agent CLIs included (a lost
   * machine), and resolves once the daemon is gone. Only for a daemon started `detached`.
   */
  killGroup(signal: NodeJS.Signals): Promise<number | null>;
  api(method: string, route: string, body?: unknown): Promise<{ status: number; json: unknown }>;
}

/**
 * Starts `dispatch start` as a real child process and waits until its API answers. `onSpawn`
 * gets the pid at once, for a test that must act while the daemon is still starting.
 */
export async function startDaemonProcess(
  env: NodeJS.ProcessEnv,
  args: string[] = [],
  options: {
    onSpawn?: (pid: number) => void;
    /** In a process group of its own, for `killGroup`. */
    detached?: boolean;
  } = {},
): Promise<DaemonProcess> {
  const port = Number(env.DISPATCH_PORT);
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    ["--import", "tsx", CLI, "start", ...args],
    {
      env,
      cwd: REPO,
      detached: options.detached ?? false,
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
    if (child.exitCode !== null)
      throw new Error(`dispatch exited early (${child.exitCode}):\n${output}`);
    if (Date.now() > deadline) throw new Error(`dispatch did not come up in 30 s:\n${output}`);
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
      if (!options.detached) throw new Error("killGroup needs a daemon started detached");
      process.kill(-child.pid!, signal);
      return exited;
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
