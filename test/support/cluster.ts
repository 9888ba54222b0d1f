/**
 * A cluster for the tests (issue 14): N real `dispatch start` child processes on one PostgreSQL
 * database, each a node with its own temporary HOME (no shared disk), its own port and
 * `DISPATCH_NODE_ID`, the same contacts.json and config.json, all pointed at one stand-in model.
 * Each runs in a process group of its own, so `kill()` is a machine loss: the daemon and its agent
 * CLIs (each in a group of its own) SIGKILLed at once. `stop()` ends every node still running, by
 * its pid.
 *
 * The database comes from the caller: `createTestDatabase()` in a vitest file, a private server
 * of its own in the soak (`test/soak/cluster-crash-loop.ts`).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import type { NodeView, SessionView } from "../../src/channels/http/control-plane.js";
import { logFilesInOrder } from "../../src/logging/log-file.js";
import { makeDaemonHome, type DaemonHome } from "./daemon-home.js";
import { killProcessGroup, startDaemonProcess, type DaemonProcess } from "./daemon-process.js";

export interface ClusterOptions {
  /** How many nodes: `node-1` ... `node-N`. */
  nodes: number;
  /** `postgres://...` of an existing, empty database. */
  databaseUrl: string;
  /** The stand-in model's URL. */
  modelUrl: string;
  /** Every node's `dispatch/contacts.json`. */
  contacts: unknown;
  /** Every node's `dispatch/config.json` (`cluster.leaseSeconds`, `maxLiveSessions`, ...). */
  config?: unknown;
  /** More variables for every node (`DISPATCH_LOG_LEVEL`, ...). */
  env?: NodeJS.ProcessEnv;
}

export interface ApiAnswer {
  status: number;
  json: unknown;
}

/** One JSON line of a node's log file. */
export interface LogLine {
  time: string;
  msg: string;
  [field: string]: unknown;
}

export interface ClusterNode {
  /** Its `DISPATCH_NODE_ID`. */
  readonly id: string;
  readonly port: number;
  /** Its HOME; dispatch's own is `<home>/dispatch`. */
  readonly home: string;
  /** Whether it runs (started, not stopped or killed since). */
  readonly running: boolean;
  /** The running daemon's pid, which is also its process group's id. */
  readonly pid: number | undefined;
  /** The API token, readable once it first started (it stays across restarts). */
  readonly token: string;
  /** Starts it (again, on the same HOME) and waits until its API answers. */
  start(): Promise<void>;
  /**
   * `kill -9` of its process group and the agent CLIs' groups (a machine loss: the daemon and
   * every process it started). Resolves once it is gone.
   */
  kill(): Promise<void>;
  /** Sends `signal` (SIGTERM: a graceful stop) to the daemon; resolves with its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Its stdout and stderr since its latest start (kept after a kill or a stop). */
  output(): string;
  api(method: string, route: string, body?: unknown): Promise<ApiAnswer>;
  nodes(): Promise<NodeView[]>;
  sessions(): Promise<SessionView[]>;
  session(chatId: string): Promise<SessionView>;
  /** Its log file's JSON lines (`~/dispatch/state/logs/dispatch.log`, rotated ones first). */
  logLines(msg?: string): Promise<LogLine[]>;
}

export interface Cluster {
  readonly nodes: readonly ClusterNode[];
  node(id: string): ClusterNode;
  running(): ClusterNode[];
  /** Every node's log lines with this `msg`, each with the node that logged it. */
  logLines(msg: string): Promise<(LogLine & { loggedBy: string })[]>;
  /** SIGKILLs the process group of every node still running. */
  stop(): Promise<void>;
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const nodes: ClusterNode[] = [];
  const homes: DaemonHome[] = [];
  try {
    for (let index = 1; index <= options.nodes; index += 1) {
      const id = `node-${index}`;
      const home = await makeDaemonHome({
        modelUrl: options.modelUrl,
        contacts: options.contacts,
        ...(options.config === undefined ? {} : { config: options.config }),
        env: {
          ...options.env,
          DISPATCH_DATABASE_URL: options.databaseUrl,
          DISPATCH_NODE_ID: id,
        },
      });
      homes.push(home);
      nodes.push(clusterNode(id, home));
    }
    // One after the other: several daemons migrating and registering at once is fine, but on a
    // loaded machine a serial start keeps each within startDaemonProcess's 30 s.
    for (const node of nodes) await node.start();
  } catch (error) {
    await stopAll(nodes, homes);
    throw error;
  }
  return {
    nodes,
    node: (id) => {
      const found = nodes.find((node) => node.id === id);
      if (!found)
        throw new Error(`No node ${id} in this cluster: ${nodes.map((n) => n.id).join(", ")}`);
      return found;
    },
    running: () => nodes.filter((node) => node.running),
    logLines: async (msg) => {
      const lines = await Promise.all(
        nodes.map(async (node) =>
          (await node.logLines(msg)).map((line) => ({ ...line, loggedBy: node.id })),
        ),
      );
      return lines.flat();
    },
    stop: () => stopAll(nodes, homes),
  };
}

async function stopAll(nodes: readonly ClusterNode[], homes: readonly DaemonHome[]): Promise<void> {
  await Promise.all(nodes.filter((node) => node.running).map((node) => node.kill()));
  await Promise.all(homes.map((home) => home.remove()));
}

function clusterNode(id: string, home: DaemonHome): ClusterNode {
  let daemon: DaemonProcess | undefined;
  /** The latest run, kept after a kill or a stop for its output. */
  let latest: DaemonProcess | undefined;
  let token: string | undefined;
  const port = Number(home.env.DISPATCH_PORT);
  const logFile = path.join(home.home, "dispatch", "state", "logs", "dispatch.log");

  const api = async (method: string, route: string, body?: unknown): Promise<ApiAnswer> => {
    if (token === undefined) throw new Error(`${id} has never started: no API token yet`);
    const response = await fetch(`http://127.0.0.1:${port}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, json: text ? (JSON.parse(text) as unknown) : undefined };
  };
  const read = async <T>(route: string): Promise<T> => {
    const answer = await api("GET", route);
    if (answer.status !== 200) {
      throw new Error(`GET ${route} on ${id}: ${answer.status} ${JSON.stringify(answer.json)}`);
    }
    return answer.json as T;
  };

  return {
    id,
    port,
    home: home.home,
    get running() {
      return daemon !== undefined;
    },
    get pid() {
      return daemon?.pid;
    },
    get token() {
      if (token === undefined) throw new Error(`${id} has never started: no API token yet`);
      return token;
    },
    start: async () => {
      if (daemon) throw new Error(`${id} is running already (pid ${daemon.pid})`);
      daemon = await startDaemonProcess(home.env, [], { detached: true });
      latest = daemon;
      token = daemon.token;
    },
    kill: async () => {
      const running = daemon;
      if (!running) throw new Error(`${id} is not running`);
      daemon = undefined;
      await running.killTree();
    },
    stop: async (signal = "SIGTERM") => {
      const running = daemon;
      if (!running) throw new Error(`${id} is not running`);
      daemon = undefined;
      const code = await running.stop(signal);
      // An agent CLI the daemon left behind in its group goes too.
      killProcessGroup(running.pid);
      return code;
    },
    output: () => latest?.output() ?? "",
    api,
    nodes: () => read<NodeView[]>("/v1/nodes"),
    sessions: () => read<SessionView[]>("/v1/sessions"),
    session: (chatId) => read<SessionView>(`/v1/sessions/${encodeURIComponent(chatId)}`),
    logLines: async (msg) => {
      const texts = await Promise.all(
        logFilesInOrder(logFile).map((file) => readFile(file, "utf8").catch(() => "")),
      );
      const lines: LogLine[] = [];
      for (const line of texts.join("").split("\n")) {
        if (line === "" || (msg !== undefined && !line.includes(`"msg":"${msg}"`))) continue;
        try {
          lines.push(JSON.parse(line) as LogLine);
        } catch {
          // A line cut by a kill -9 mid-write: not a whole event.
        }
      }
      return lines;
    },
  };
}
