/**
 * Test helpers for the CLI: a tiny fake daemon on 127.0.0.1:0 that records every request and
 * answers from a handler, and `CliDeps` that capture what the program prints.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable, Writable } from "node:stream";
import type { SessionView } from "../../../src/channels/http/control-plane.js";
import { runCli, type CliDeps } from "../../../src/cli/main.js";
import type { CommandRunner } from "../../../src/cli/service/service-manager.js";

export const TOKEN = "test-token-0123456789";
export const NOW = new Date("2026-02-07T15:00:00.000Z");

export interface RecordedRequest {
  method: string;
  /** Path and query, as sent (still percent-encoded). */
  url: string;
  authorization: string | undefined;
  body: unknown;
}

export interface FakeResponse {
  status: number;
  body?: unknown;
}

export interface FakeDaemon {
  port: number;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

export async function startFakeDaemon(
  handler: (request: RecordedRequest) => FakeResponse | Promise<FakeResponse>,
): Promise<FakeDaemon> {
  const requests: RecordedRequest[] = [];
  const server = createServer((request, response) => {
    void (async () => {
      const text = await readText(request);
      const recorded: RecordedRequest = {
        method: request.method ?? "",
        url: request.url ?? "",
        authorization: request.headers.authorization,
        body: text === "" ? undefined : (JSON.parse(text) as unknown),
      };
      requests.push(recorded);
      const answer = await handler(recorded);
      response.writeHead(answer.status, { "content-type": "application/json" });
      response.end(answer.body === undefined ? "" : JSON.stringify(answer.body));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      ),
  };
}

/** A port nothing listens on: bound, then released. */
export async function closedPort(): Promise<number> {
  const daemon = await startFakeDaemon(() => ({ status: 500 }));
  await daemon.close();
  return daemon.port;
}

async function readText(request: IncomingMessage): Promise<string> {
  let text = "";
  for await (const chunk of request) text += String(chunk);
  return text;
}

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface TestDepsOptions {
  port?: number;
  env?: NodeJS.ProcessEnv;
  home: string;
  stdinLines?: string[];
  /** Instead of `stdinLines`: a stream the test writes to as it goes. */
  stdin?: NodeJS.ReadableStream;
  stdinIsTTY?: boolean;
  stdoutIsTTY?: boolean;
  platform?: NodeJS.Platform;
  startDaemon?: CliDeps["startDaemon"];
  /** Settles the command's wait for Ctrl-C; by default it never comes. */
  interrupted?: Promise<void>;
  /** Sees stdout as it is written, for a command that runs until interrupted. */
  onStdout?: (text: string) => void;
  /** Runs systemctl or launchctl for `dispatch service`; by default nothing may be run. */
  runCommand?: CommandRunner;
  /** The built entry point the service would run. */
  mainScript?: string;
  /** Opens a link (`dispatch dashboard`); by default there is no browser. */
  openUrl?: CliDeps["openUrl"];
}

/** Runs `dispatch <args>` in-process with captured output. */
export async function runDispatch(args: string[], options: TestDepsOptions): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const deps: CliDeps = {
    env: {
      DISPATCH_HOME: join(options.home, "dispatch"),
      ...(options.port === undefined ? {} : { DISPATCH_PORT: String(options.port) }),
      DISPATCH_API_TOKEN: TOKEN,
      ...options.env,
    },
    homeDir: options.home,
    platform: options.platform ?? "linux",
    nodeVersion: "20.17.0",
    version: "9.9.9-test",
    stdout: (text) => {
      stdout += text;
      options.onStdout?.(text);
    },
    stderr: (text) => {
      stderr += text;
    },
    stdoutStream: new Writable({
      write(chunk: Buffer | string, _encoding, callback) {
        stdout += String(chunk);
        options.onStdout?.(String(chunk));
        callback();
      },
    }),
    stdin: options.stdin ?? Readable.from((options.stdinLines ?? []).map((line) => `${line}\n`)),
    stdinIsTTY: options.stdinIsTTY ?? false,
    stdoutIsTTY: options.stdoutIsTTY ?? false,
    now: () => NOW,
    startDaemon: options.startDaemon ?? (() => Promise.reject(new Error("not in this test"))),
    openUrl: options.openUrl ?? (() => Promise.resolve(false)),
    waitForInterrupt: () => options.interrupted ?? new Promise<void>(() => undefined),
    service: {
      run:
        options.runCommand ??
        ((program) => Promise.reject(new Error(`${program} must not run in this test`))),
      uid: 501,
      nodePath: "/usr/local/bin/node",
      mainScript: options.mainScript ?? "/opt/dispatch/dist/cli/main.js",
    },
  };
  const exitCode = await runCli(args, deps);
  return { exitCode, stdout, stderr };
}

export async function withTempHome<T>(work: (home: string) => Promise<T>): Promise<T> {
  const home = await mkdtemp(join(tmpdir(), "dispatch-cli-"));
  try {
    return await work(home);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

export function sessionView(overrides: Partial<SessionView> = {}): SessionView {
  return {
    chat_id: "+15551234567",
    session_name: "john-doe",
    contact_name: "John Doe",
    tier: "favorite",
    session_id: "abc-123-def",
    state: "idle",
    created_at: "2026-02-01T10:00:00.000Z",
    last_message_time: "2026-02-07T14:57:00.000Z",
    chat_kind: "individual",
    channel: "http",
    turns: 12,
    errors: 1,
    restarts: 0,
    unanswered: 0,
    pid: 4242,
    total_cost_usd: 0.4213,
    previous_session_ids: [],
    node: "mac-mini:7878",
    ...overrides,
  };
}
