/**
 * A real dispatch daemon for one scenario: a temp HOME with config.json, contacts.json and
 * sessions.json written up front, the daemon as a child process pointed at the stand-in model,
 * and its HTTP API. `stop()` ends it with SIGTERM, as a service manager would, and then checks
 * that every process it started (its Claude CLI children) is gone.
 */
import { randomUUID } from "node:crypto";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import type { DaemonCommand } from "./daemon-command.js";
import { REPO } from "./daemon-command.js";
import { parseMetrics, postJson } from "./daemon-api.js";
import { descendantsOf, isAgentProcess, isRunning, type ProcessInfo } from "./process-tree.js";

export interface HomeFiles {
  config: Record<string, unknown>;
  contacts?: unknown;
  registry?: unknown;
}

export interface BenchHome {
  home: string;
  dispatchDir: string;
  writeConfig(config: Record<string, unknown>): Promise<void>;
  remove(): Promise<void>;
}

/** What every benchmark daemon shares: no iMessage, a short shutdown grace. */
const BASE_CONFIG = {
  channels: { imessage: { enabled: false } },
  shutdownGraceSeconds: 5,
};

export async function createBenchHome(files: HomeFiles): Promise<BenchHome> {
  const home = await mkdtemp(path.join(os.tmpdir(), "dispatch-bench-"));
  const dispatchDir = path.join(home, "dispatch");
  await mkdir(path.join(dispatchDir, "state"), { recursive: true, mode: 0o700 });
  const writeConfig = (config: Record<string, unknown>) =>
    writeFile(
      path.join(dispatchDir, "config.json"),
      JSON.stringify({ ...BASE_CONFIG, ...config }, null, 2),
    );
  await writeConfig(files.config);
  if (files.contacts !== undefined) {
    await writeFile(path.join(dispatchDir, "contacts.json"), JSON.stringify(files.contacts));
  }
  if (files.registry !== undefined) {
    await writeFile(
      path.join(dispatchDir, "state", "sessions.json"),
      JSON.stringify(files.registry, null, 2),
      { mode: 0o600 },
    );
  }
  return {
    home,
    dispatchDir,
    writeConfig,
    remove: () => rm(home, { recursive: true, force: true }),
  };
}

export interface PostOutcome {
  ok: boolean;
  status: number;
  /** Date.now() when the request was sent: comparable with the stand-in's `at`. */
  sentAt: number;
  /** performance.now() milliseconds from send to the whole response read. */
  elapsedMs: number;
  /** The daemon's own part of it (`Server-Timing`): the request's arrival to its response. */
  daemonMs?: number;
  reply?: string | null;
  /** The API's error code, or the fetch failure. */
  error?: string;
  /**
   * Times the request was sent again, with the same `message_id`, after its kept-alive connection
   * was reset before any response: the daemon closed it as idle just as it was reused.
   */
  resent: number;
}

/** A kept-alive socket the server closed while the client reused it: nothing was answered. */
const CONNECTION_RESET = /ECONNRESET|socket hang up/;

export interface StopReport {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stopMs: number;
  /** Descendants still running after the daemon exited (killed by pid when found). */
  leftover: ProcessInfo[];
}

export interface BenchDaemon {
  pid: number;
  port: number;
  /** `extra`: more fields of the request, such as a group member's `sender`. */
  post(chatId: string, text: string, extra?: { sender?: string }): Promise<PostOutcome>;
  /** Drops a chat from the registry (`DELETE /v1/sessions/:chat_id?forget=true`). */
  forget(chatId: string): Promise<void>;
  /** `GET /metrics` as name (with labels) to value. */
  metrics(): Promise<Map<string, number>>;
  /** An authenticated `GET` of the API (`/v1/nodes`), its JSON body; rejects unless 200. */
  getJson<Body>(route: string): Promise<Body>;
  agentProcesses(): Promise<ProcessInfo[]>;
  /** The last 20,000 characters of the daemon's output. */
  output(): string;
  stop(): Promise<StopReport>;
}

const OUTPUT_TAIL_CHARS = 20_000;
const running = new Set<BenchDaemon>();

/** Stops every daemon still running: the harness calls it when a scenario fails. */
export async function stopAllDaemons(): Promise<void> {
  await Promise.allSettled([...running].map((daemon) => daemon.stop()));
}

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

export async function startBenchDaemon(options: {
  command: DaemonCommand;
  home: BenchHome;
  modelUrl: string;
  logLevel?: string;
  /** Extra flags for node, before the script (`--cpu-prof`). */
  nodeArgs?: string[];
  /** More environment: `DISPATCH_DATABASE_URL` and `DISPATCH_NODE_ID` for a node on PostgreSQL. */
  env?: Record<string, string>;
}): Promise<BenchDaemon> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...options.env,
    PATH: process.env.PATH,
    HOME: options.home.home,
    DISPATCH_PORT: String(port),
    DISPATCH_LOG_LEVEL: options.logLevel ?? "info",
    ANTHROPIC_BASE_URL: options.modelUrl,
    ANTHROPIC_API_KEY: "bench-stand-in",
  };
  const child: ChildProcess = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), ...options.command.args],
    { env, cwd: REPO, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const collect = (chunk: string) => {
    output = (output + chunk).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout!.setEncoding("utf8").on("data", collect);
  child.stderr!.setEncoding("utf8").on("data", collect);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const pid = child.pid!;

  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`[bench] dispatch exited while starting (${child.exitCode}):\n${output}`);
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`[bench] dispatch did not answer /healthz within 60 s:\n${output}`);
    }
    const ready = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (response) => response.ok,
      () => false,
    );
    if (ready) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const token = (
    await readFile(path.join(options.home.dispatchDir, "state", "api-token"), "utf8")
  ).trim();
  const headers = { authorization: `Bearer ${token}` };

  let stopping: Promise<StopReport> | undefined;
  const daemon: BenchDaemon = {
    pid,
    port,
    output: () => output,
    async post(chatId, text, extra = {}) {
      const sentAt = Date.now();
      const started = performance.now();
      // As a client should: a message id makes sending again safe; it is answered once.
      const request = { chat_id: chatId, text, wait: true, message_id: randomUUID(), ...extra };
      let resent = 0;
      try {
        let response;
        for (;;) {
          try {
            // Again on a new connection: the server may have closed every idle one at once.
            response = await postJson(port, token, request, { fresh: resent > 0 });
            break;
          } catch (error) {
            if (resent > 0 || !CONNECTION_RESET.test(String(error))) throw error;
            resent += 1;
          }
        }
        const elapsedMs = performance.now() - started;
        const body = JSON.parse(response.text) as {
          reply?: string | null;
          error?: { code?: string; message?: string };
        };
        if (response.status !== 200) {
          return {
            ok: false,
            status: response.status,
            sentAt,
            elapsedMs,
            error: `${body.error?.code ?? "error"}: ${body.error?.message ?? ""}`,
            resent,
          };
        }
        return {
          ok: true,
          status: response.status,
          sentAt,
          elapsedMs,
          ...(response.serverMs === undefined ? {} : { daemonMs: response.serverMs }),
          reply: body.reply ?? null,
          resent,
        };
      } catch (error) {
        return {
          ok: false,
          status: 0,
          sentAt,
          elapsedMs: performance.now() - started,
          error: `request_failed: ${error instanceof Error ? error.message : String(error)}`,
          resent,
        };
      }
    },
    async forget(chatId) {
      const url = `http://127.0.0.1:${port}/v1/sessions/${encodeURIComponent(chatId)}?forget=true`;
      const response = await fetch(url, { method: "DELETE", headers });
      if (!response.ok) {
        throw new Error(
          `[bench] Could not forget ${chatId}: ${response.status} ${await response.text()}`,
        );
      }
    },
    async metrics() {
      const response = await fetch(`http://127.0.0.1:${port}/metrics`, { headers });
      return parseMetrics(await response.text());
    },
    async getJson<Body>(route: string): Promise<Body> {
      const response = await fetch(`http://127.0.0.1:${port}${route}`, { headers });
      const text = await response.text();
      if (response.status !== 200) {
        throw new Error(`[bench] GET ${route} answered ${response.status}: ${text.slice(0, 500)}`);
      }
      return JSON.parse(text) as Body;
    },
    async agentProcesses() {
      return (await descendantsOf(pid)).filter(isAgentProcess);
    },
    stop() {
      stopping ??= (async () => {
        const started = performance.now();
        const before = await descendantsOf(pid);
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
        const timedOut = await Promise.race([
          exited.then(() => false),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 60_000)),
        ]);
        if (timedOut) {
          child.kill("SIGKILL");
          await exited;
        }
        const stopMs = performance.now() - started;
        // esbuild's service (tsx runner) ends when its pipe closes: give stragglers 5 s.
        let leftover = before;
        for (let waited = 0; waited < 5_000; waited += 100) {
          leftover = (
            await Promise.all(
              leftover.map(async (info) => ((await isRunning(info.pid)) ? [info] : [])),
            )
          ).flat();
          if (leftover.length === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        for (const info of leftover) {
          try {
            process.kill(info.pid, "SIGKILL");
          } catch {
            // gone meanwhile
          }
        }
        running.delete(daemon);
        return { exitCode: child.exitCode, signal: child.signalCode, stopMs, leftover };
      })();
      return stopping;
    },
  };
  running.add(daemon);
  return daemon;
}
