import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  NOW,
  TOKEN,
  closedPort,
  runDispatch,
  sessionView,
  startFakeDaemon,
  type FakeDaemon,
  type FakeResponse,
  type RecordedRequest,
} from "./cli-harness.js";

const HEALTH = {
  status: "ok",
  version: "0.1.0",
  uptime_seconds: 7_500,
  sessions: { registered: 2, live: 1 },
};

const SESSIONS = [
  sessionView(),
  sessionView({
    chat_id: "chat123456789",
    session_name: "family-chat",
    contact_name: null,
    tier: "family",
    state: "stopped",
    chat_kind: "group",
    last_message_time: "2026-02-07T12:00:00.000Z",
    turns: 3,
    errors: 0,
  }),
];

const NODES = [
  {
    node_id: "mac-mini:7878",
    address: "http://127.0.0.1:7878",
    state: "serving",
    started_at: "2026-02-07T12:55:00.000Z",
    last_heartbeat_at: "2026-02-07T14:59:57.000Z",
    heartbeat_age_seconds: 3,
    lease: "alive",
    pool: { live: 1, total: 32 },
    channels: ["http", "imessage"],
    chats: 2,
    self: true,
  },
  {
    node_id: "box-2:7878",
    address: "http://10.0.0.6:7878",
    state: "gone",
    started_at: "2026-02-06T15:00:00.000Z",
    last_heartbeat_at: "2026-02-07T14:00:00.000Z",
    heartbeat_age_seconds: 3600,
    lease: "expired",
    pool: { live: 0, total: 8 },
    channels: [],
    chats: 0,
    self: false,
  },
];

let home: string;
let daemon: FakeDaemon | undefined;

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), "dispatch-cli-"));
});
afterEach(async () => {
  await daemon?.close();
  daemon = undefined;
  await rm(home, { recursive: true, force: true });
});

/** The fake daemon's routes: /healthz, the session list and one session, a message reply. */
function routes(
  overrides: (request: RecordedRequest) => FakeResponse | undefined = () => undefined,
) {
  return (request: RecordedRequest): FakeResponse => {
    const special = overrides(request);
    if (special) return special;
    if (request.url === "/healthz") return { status: 200, body: HEALTH };
    if (request.authorization !== `Bearer ${TOKEN}`) {
      return { status: 401, body: { error: { code: "unauthorized", message: "Wrong token." } } };
    }
    if (request.method === "GET" && request.url === "/v1/sessions")
      return { status: 200, body: SESSIONS };
    if (request.method === "GET" && request.url === "/v1/nodes")
      return { status: 200, body: NODES };
    if (request.method === "GET" && request.url === "/v1/sessions/%2B15551234567") {
      return { status: 200, body: SESSIONS[0] };
    }
    if (request.method === "POST" && request.url === "/v1/sessions/%2B15551234567/restart") {
      return { status: 200, body: sessionView({ state: "starting" }) };
    }
    if (request.method === "DELETE") {
      const forgotten = request.url.endsWith("?forget=true");
      const archive = forgotten ? "/home/me/dispatch/state/forgotten/2026-11-25-john-doe" : null;
      return { status: 200, body: { stopped: true, forgotten, archive } };
    }
    if (request.method === "POST" && request.url === "/v1/messages") {
      return {
        status: 200,
        body: {
          chat_id: "+15551234567",
          session_name: "john-doe",
          session_id: "s",
          reply: "hello back",
          message_id: "m-1",
        },
      };
    }
    return {
      status: 404,
      body: { error: { code: "not_found", message: `No route ${request.url}.` } },
    };
  };
}

async function run(args: string[], options: { stdinLines?: string[]; stdinIsTTY?: boolean } = {}) {
  daemon ??= await startFakeDaemon(routes());
  return runDispatch(args, { port: daemon.port, home, ...options });
}

describe("dispatch status", () => {
  it("prints uptime, counts, one row per node, and one row per session, newest first", async () => {
    const result = await run(["status"]);
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.split("\n");
    expect(lines[0]).toBe("dispatch 0.1.0 · up 2h 5m · 1 live / 2 registered sessions");
    expect(lines[2]).toMatch(
      /^NODE\s+ADDRESS\s+STATE\s+LEASE\s+HEARTBEAT\s+STARTED\s+POOL\s+CHANNELS\s+CHATS$/,
    );
    expect(lines[3]).toMatch(
      /^box-2:7878\s+http:\/\/10\.0\.0\.6:7878\s+gone\s+expired\s+1h ago\s+1d ago\s+0\/8\s+-\s+0$/,
    );
    expect(lines[4]).toMatch(
      /^mac-mini:7878 \*\s+http:\/\/127\.0\.0\.1:7878\s+serving\s+alive\s+just now\s+2h ago\s+1\/32\s+http,imessage\s+2$/,
    );
    expect(lines[6]).toMatch(/^CHAT\s+CONTACT\s+TIER\s+STATE\s+LAST MESSAGE\s+TURNS\s+ERRORS$/);
    expect(lines[7]).toMatch(/^\+15551234567\s+John Doe\s+favorite\s+idle\s+3m ago\s+12\s+1$/);
    expect(lines[8]).toMatch(/^chat123456789\s+-\s+family\s+stopped\s+3h ago\s+3\s+0$/);
    expect(daemon?.requests.map((request) => request.url)).toEqual([
      "/healthz",
      "/v1/nodes",
      "/v1/sessions",
    ]);
  });

  it("prints the raw JSON with --json", async () => {
    const result = await run(["status", "--json"]);
    expect(JSON.parse(result.stdout)).toEqual({ health: HEALTH, nodes: NODES, sessions: SESSIONS });
  });

  it("says dispatch is not running, on stderr, with exit code 1", async () => {
    const port = await closedPort();
    const result = await runDispatch(["status"], { port, home });
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(
      `error: dispatch is not running on 127.0.0.1:${port}. Start it with \`npm start\` (or \`dispatch start\`)\n`,
    );
  });

  it("shows the API's error message without a stack trace", async () => {
    daemon = await startFakeDaemon(routes());
    const result = await runDispatch(["status"], {
      port: daemon.port,
      home,
      env: { DISPATCH_API_TOKEN: "wrong" },
    });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe("error: Wrong token.\n");
  });
});

describe("dispatch send", () => {
  it("posts the words as one text with wait: true and prints the reply", async () => {
    const result = await run([
      "send",
      "+15551234567",
      "how",
      "are",
      "you?",
      "--sender",
      "+1999",
      "--group-name",
      "Fam",
    ]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe("hello back\n");
    expect(daemon?.requests).toEqual([
      {
        method: "POST",
        url: "/v1/messages",
        authorization: `Bearer ${TOKEN}`,
        body: {
          chat_id: "+15551234567",
          text: "how are you?",
          sender: "+1999",
          group_name: "Fam",
          wait: true,
        },
      },
    ]);
  });

  it("prints (no reply) when the agent chose silence", async () => {
    daemon = await startFakeDaemon(
      routes((request) =>
        request.url === "/v1/messages"
          ? {
              status: 200,
              body: {
                chat_id: "c",
                session_name: "c",
                session_id: null,
                reply: null,
                message_id: "m",
              },
            }
          : undefined,
      ),
    );
    const result = await run(["send", "chat1", "hi"]);
    expect(result.stdout).toBe("(no reply)\n");
  });

  it("with --no-wait sends wait: false and prints the message id", async () => {
    daemon = await startFakeDaemon(
      routes((request) =>
        request.url === "/v1/messages"
          ? { status: 202, body: { message_id: "msg-77", chat_id: "c" } }
          : undefined,
      ),
    );
    const result = await run(["send", "--no-wait", "chat1", "hi"]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe("msg-77\n");
    expect(daemon.requests[0]?.body).toEqual({ chat_id: "chat1", text: "hi", wait: false });
  });

  it("is a usage error (exit 2) without text", async () => {
    const result = await run(["send", "+15551234567"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("missing required argument 'text'");
    expect(daemon?.requests).toEqual([]);
  });
});

describe("dispatch sessions", () => {
  it("list prints a table", async () => {
    const result = await run(["sessions", "list"]);
    expect(result.exitCode).toBe(0);
    expect(result.stdout.split("\n")[1]).toMatch(
      /^\+15551234567\s+john-doe\s+John Doe\s+favorite\s+idle\s+http\s+3m ago$/,
    );
  });

  it("show normalises the chat id the way the registry keys it", async () => {
    const result = await run(["sessions", "show", "+1 (555) 123-4567"]);
    expect(result.exitCode).toBe(0);
    expect(daemon?.requests[0]?.url).toBe("/v1/sessions/%2B15551234567");
    expect(result.stdout).toContain("session       john-doe\n");
    expect(result.stdout).toContain("last message  2026-02-07T14:57:00.000Z (3m ago)\n");
    expect(result.stdout).toContain("cost          $0.42\n");
    expect(result.stdout).toContain("node          mac-mini:7878\n");
  });

  it("show passes the API's not_found message on", async () => {
    const result = await run(["sessions", "show", "nobody@example.com"]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe("error: No route /v1/sessions/nobody%40example.com.\n");
  });

  it("restart posts to the restart route", async () => {
    const result = await run(["sessions", "restart", "+15551234567"]);
    expect(result.exitCode).toBe(0);
    expect(daemon?.requests[0]).toMatchObject({
      method: "POST",
      url: "/v1/sessions/%2B15551234567/restart",
    });
    expect(result.stdout).toBe("Restarted +15551234567 (session john-doe, starting).\n");
  });

  it("stop deletes without forgetting", async () => {
    const result = await run(["sessions", "stop", "+15551234567"]);
    expect(result.exitCode).toBe(0);
    expect(daemon?.requests[0]).toMatchObject({
      method: "DELETE",
      url: "/v1/sessions/%2B15551234567",
    });
    expect(result.stdout).not.toContain("Its files are in");
  });

  it("forget refuses without --yes when stdin is not a terminal, sending nothing", async () => {
    const result = await run(["sessions", "forget", "+15551234567"], { stdinIsTTY: false });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("Pass --yes");
    expect(daemon?.requests).toEqual([]);
  });

  it("forget --yes deletes with ?forget=true and says where the files went", async () => {
    const result = await run(["sessions", "forget", "--yes", "+15551234567"]);
    expect(result.exitCode).toBe(0);
    expect(daemon?.requests[0]).toMatchObject({
      method: "DELETE",
      url: "/v1/sessions/%2B15551234567?forget=true",
    });
    expect(result.stdout).toBe(
      "Forgot +15551234567. Its next message starts a new conversation.\n" +
        "Its files are in /home/me/dispatch/state/forgotten/2026-11-25-john-doe\n",
    );
  });

  it("forget asks on a terminal and forgets on 'y'", async () => {
    const result = await run(["sessions", "forget", "+15551234567"], {
      stdinIsTTY: true,
      stdinLines: ["y"],
    });
    expect(result.stdout).toContain("Forget +15551234567?");
    expect(daemon?.requests[0]?.url).toBe("/v1/sessions/%2B15551234567?forget=true");
  });

  it("forget asks on a terminal and keeps the session on anything else", async () => {
    const result = await run(["sessions", "forget", "+15551234567"], {
      stdinIsTTY: true,
      stdinLines: ["n"],
    });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain("Nothing forgotten.");
    expect(daemon?.requests).toEqual([]);
  });

  it("without a subcommand shows its help as a usage error", async () => {
    const result = await run(["sessions"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("forget [options] <chat>");
  });
});

describe("dispatch nodes", () => {
  it("prints one row per node by id, this one marked", async () => {
    const result = await run(["nodes"]);
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.split("\n");
    expect(lines[0]).toMatch(/^NODE\s+ADDRESS\s+STATE\s+LEASE/);
    expect(lines[1]).toMatch(/^box-2:7878\s+.*\s+gone\s+expired\s/);
    expect(lines[2]).toMatch(/^mac-mini:7878 \*\s+.*\s+serving\s+alive\s/);
    expect(daemon?.requests.map((request) => request.url)).toEqual(["/v1/nodes"]);
  });

  it("prints the raw JSON with --json", async () => {
    const result = await run(["nodes", "--json"]);
    expect(JSON.parse(result.stdout)).toEqual(NODES);
  });
});

describe("with an invalid config.json", () => {
  /** A daemon that started before config.json was broken: its lock file names its port. */
  async function brokenConfigWithRunningDaemon(): Promise<void> {
    daemon = await startFakeDaemon(routes());
    await mkdir(join(home, "dispatch", "state"), { recursive: true });
    await writeFile(join(home, "dispatch", "config.json"), '{ "port": 7878, "idleTimeout": 5 }');
    await writeFile(
      join(home, "dispatch", "state", "daemon.lock"),
      JSON.stringify({ pid: process.pid, started_at: NOW.toISOString(), port: daemon.port }),
    );
  }

  it("status, send and sessions still reach the running daemon, with a warning (bug: they refused to run)", async () => {
    await brokenConfigWithRunningDaemon();
    for (const args of [
      ["status"],
      ["send", "+15551234567", "hi"],
      ["sessions", "list"],
      ["sessions", "show", "+1 (555) 123-4567"],
    ]) {
      const result = await runDispatch(args, { home });
      expect(result.exitCode, `${args.join(" ")}: ${result.stderr}`).toBe(0);
      expect(result.stderr).toContain(
        `warning: ${join(home, "dispatch", "config.json")} is invalid, so using the running daemon's port ${daemon!.port}.`,
      );
    }
    expect(daemon!.requests.map((request) => `${request.method} ${request.url}`)).toEqual([
      "GET /healthz",
      "GET /v1/nodes",
      "GET /v1/sessions",
      "POST /v1/messages",
      "GET /v1/sessions",
      "GET /v1/sessions/%2B15551234567",
    ]);
  });

  it("without a lock file takes `port` from the file if it alone is good", async () => {
    daemon = await startFakeDaemon(routes());
    await mkdir(join(home, "dispatch"), { recursive: true });
    await writeFile(
      join(home, "dispatch", "config.json"),
      JSON.stringify({ port: daemon.port, unknownSenders: "everyone" }),
    );
    const result = await runDispatch(["sessions", "list"], { home });
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain(`using config.json's \`port\` port ${daemon.port}`);
  });

  it("an invalid DISPATCH_PORT is still an error", async () => {
    await brokenConfigWithRunningDaemon();
    const result = await runDispatch(["status"], { home, env: { DISPATCH_PORT: "http" } });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("Expected `DISPATCH_PORT` to be an integer");
  });
});

describe("dispatch start, --help, --version", () => {
  it("start --demo calls startDaemon with demo: true", async () => {
    const calls: boolean[] = [];
    const result = await runDispatch(["start", "--demo"], {
      home,
      startDaemon: (options) => {
        calls.push(options.demo);
        return Promise.resolve();
      },
    });
    expect(result.exitCode).toBe(0);
    expect(calls).toEqual([true]);
  });

  it("start reports a DispatchError from the daemon as error: ...", async () => {
    const { DispatchError } = await import("../../../src/utils/errors.js");
    const result = await runDispatch(["start"], {
      home,
      startDaemon: () => Promise.reject(new DispatchError("locked", "Another dispatch runs.")),
    });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe("error: Another dispatch runs.\n");
  });

  it("every command has --help", async () => {
    for (const command of [
      ["start"],
      ["status"],
      ["send"],
      ["chat"],
      ["sessions", "forget"],
      ["contacts", "check"],
      ["doctor"],
      ["init"],
      ["logs"],
      ["service", "install"],
      ["service", "uninstall"],
      ["service", "status"],
      ["version"],
    ]) {
      const result = await runDispatch([...command, "--help"], { home });
      expect(result.exitCode, command.join(" ")).toBe(0);
      expect(result.stdout, command.join(" ")).toContain(`Usage: dispatch ${command.join(" ")}`);
    }
  });

  it("-v, -V, --version and `version` print the version and exit 0", async () => {
    for (const args of [["-v"], ["-V"], ["--version"], ["version"]]) {
      const result = await runDispatch(args, { home });
      expect(result, args.join(" ")).toEqual({ exitCode: 0, stdout: "9.9.9-test\n", stderr: "" });
    }
  });

  it("an unknown command is a usage error with a suggestion", async () => {
    const result = await runDispatch(["stauts"], { home });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("Did you mean status?");
  });
});
