/**
 * What every command needs from the outside world, passed in as one `deps` object so tests can
 * run the real program against a fake daemon and read what it printed.
 */
import { createInterface } from "node:readline";
import type { LoadedConfig } from "../config/load-config.js";
import type { StartInfo } from "../daemon/daemon.js";
import { loadConfig } from "../config/load-config.js";
import { createApiClientFor, type ApiClient } from "./api-client.js";
import type { CommandRunner } from "./service/service-manager.js";

/** Runs the daemon in this process until it stops; `src/daemon/run-daemon.ts` provides it. */
export type StartDaemon = (options: {
  demo: boolean;
  /** Called once the daemon is up, with where everything is. */
  onStarted?: (info: StartInfo) => void;
}) => Promise<void>;

export interface CliDeps {
  env: NodeJS.ProcessEnv;
  /** `os.homedir()` */
  homeDir: string;
  platform: NodeJS.Platform;
  /** `process.versions.node` */
  nodeVersion: string;
  /** dispatch's own version, for `--version`. */
  version: string;
  /** Writes text as given: callers end their lines with "\n". */
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** stdout as a stream, for the line editor of `dispatch chat` on a terminal. */
  stdoutStream: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream;
  /** Whether a person is typing: prompts and confirmations only then. */
  stdinIsTTY: boolean;
  /** Whether stdout is a terminal: colours only then. */
  stdoutIsTTY: boolean;
  now: () => Date;
  startDaemon: StartDaemon;
  /** Resolves at the first Ctrl-C (SIGINT) or SIGTERM after it is called: `logs --follow` ends. */
  waitForInterrupt: () => Promise<void>;
  /**
   * Opens a link in the person's browser (`dispatch dashboard`); false when there is none to
   * open (no display, no opener), and the command prints the link instead.
   */
  openUrl: (url: string) => Promise<boolean>;
  /** What `dispatch service` needs: how to run systemctl or launchctl, and what to run. */
  service: {
    run: CommandRunner;
    /** `process.getuid()`, for launchd's `gui/<uid>` domain. */
    uid: number;
    /** `process.execPath` */
    nodePath: string;
    /** This installation's `dist/cli/main.js`. */
    mainScript: string;
  };
}

/** Thrown by a command that has already explained its failure: exit 1, print nothing more. */
export class CommandFailed extends Error {
  constructor() {
    super("command failed");
    this.name = "CommandFailed";
  }
}

export interface CliContext {
  readonly deps: CliDeps;
  /** One line to stdout. */
  print(line?: string): void;
  /** One line to stderr. */
  warn(line: string): void;
  /** The API client, created on first use (it may read config.json for the port). */
  api(): Promise<ApiClient>;
  /** config.json and the environment, read once. */
  config(): Promise<LoadedConfig>;
  /** Asks a yes/no question on stdin; only call it when `deps.stdinIsTTY`. */
  confirm(question: string): Promise<boolean>;
}

export function createCliContext(deps: CliDeps): CliContext {
  let api: Promise<ApiClient> | undefined;
  let config: Promise<LoadedConfig> | undefined;
  const readConfig = (): Promise<LoadedConfig> =>
    (config ??= loadConfig({ env: deps.env, homeDir: deps.homeDir, platform: deps.platform }));
  return {
    deps,
    print: (line = "") => deps.stdout(`${line}\n`),
    warn: (line) => deps.stderr(`${line}\n`),
    api: () => (api ??= createApiClientFor(deps, readConfig)),
    config: readConfig,
    confirm: (question) => confirm(deps, question),
  };
}

async function confirm(deps: CliDeps, question: string): Promise<boolean> {
  deps.stdout(`${question} [y/N] `);
  const lines = createInterface({ input: deps.stdin, crlfDelay: Infinity, terminal: false });
  try {
    for await (const line of lines) return /^y(es)?$/i.test(line.trim());
    return false;
  } finally {
    lines.close();
  }
}
