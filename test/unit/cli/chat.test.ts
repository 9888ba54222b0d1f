import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { prefixLines } from "../../../src/cli/commands/messages.js";
import { closedPort, runDispatch, startFakeDaemon, type FakeDaemon } from "./cli-harness.js";

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

/** Replies "echo: <text>", except to "limit", which is rate limited, and "quiet" (no reply). */
async function echoDaemon(): Promise<FakeDaemon> {
  return startFakeDaemon((request) => {
    const { text } = request.body as { text: string };
    if (text === "limit") {
      return { status: 429, body: { error: { code: "rate_limited", message: "Slow down." } } };
    }
    const reply = text === "quiet" ? null : `echo: ${text}`;
    return {
      status: 200,
      body: {
        chat_id: "+15551234567",
        session_name: "john-doe",
        session_id: "s",
        reply,
        message_id: "m",
      },
    };
  });
}

describe("dispatch chat", () => {
  it("sends each piped line in order with wait: true, prints prefixed replies, exits 0 at end of input", async () => {
    daemon = await echoDaemon();
    const result = await runDispatch(["chat", "+15551234567"], {
      port: daemon.port,
      home,
      stdinLines: ["hello", "", "  how are you  ", "quiet"],
    });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(
      "john-doe> echo: hello\njohn-doe> echo: how are you\njohn-doe> (no reply)\n",
    );
    // Blank lines are skipped; each text is trimmed.
    expect(daemon.requests.map((request) => request.body)).toEqual([
      { chat_id: "+15551234567", text: "hello", wait: true },
      { chat_id: "+15551234567", text: "how are you", wait: true },
      { chat_id: "+15551234567", text: "quiet", wait: true },
    ]);
  });

  it("prints no prompt when stdin is not a terminal, and one per line when it is", async () => {
    daemon = await echoDaemon();
    const piped = await runDispatch(["chat", "x@y.z"], {
      port: daemon.port,
      home,
      stdinLines: ["hi"],
    });
    expect(piped.stdout).not.toContain("you>");
    const typed = await runDispatch(["chat", "x@y.z"], {
      port: daemon.port,
      home,
      stdinLines: ["hi"],
      stdinIsTTY: true,
    });
    expect(typed.exitCode).toBe(0);
    const screen = withoutEscapes(typed.stdout);
    expect(screen).toContain("you> ");
    expect(screen).toContain("john-doe> echo: hi\n");
    expect(typed.stderr).toContain("Ctrl-D leaves");
  });

  it("keeps going after a rate limit, reporting it on stderr", async () => {
    daemon = await echoDaemon();
    const result = await runDispatch(["chat", "+15551234567"], {
      port: daemon.port,
      home,
      stdinLines: ["limit", "after"],
    });
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toBe("error: Slow down.\n");
    expect(result.stdout).toBe("john-doe> echo: after\n");
  });

  it("stops at the first line when dispatch is not running", async () => {
    const port = await closedPort();
    const result = await runDispatch(["chat", "+15551234567"], {
      port,
      home,
      stdinLines: ["a", "b"],
    });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toBe(
      `error: dispatch is not running on 127.0.0.1:${port}. Start it with \`npm start\` (or \`dispatch start\`)\n`,
    );
  });

  it("passes --sender and --group-name on every line", async () => {
    daemon = await echoDaemon();
    await runDispatch(["chat", "chat123", "--sender", "+1555", "--group-name", "Fam"], {
      port: daemon.port,
      home,
      stdinLines: ["a"],
    });
    expect(daemon.requests[0]?.body).toEqual({
      chat_id: "chat123",
      text: "a",
      sender: "+1555",
      group_name: "Fam",
      wait: true,
    });
  });
});

const ESC = String.fromCharCode(27);
/** What a terminal shows, without the cursor movements and line clearing. */
function withoutEscapes(text: string): string {
  return text.replace(new RegExp(`${ESC}\\[[0-9;]*[A-Za-z]`, "g"), "");
}

describe("dispatch chat on a terminal", () => {
  /** Each message waits until the test lets it through; replies "echo: <text>". */
  async function heldDaemon() {
    const held = new Map<string, () => void>();
    const server = await startFakeDaemon(async (request) => {
      const { text } = request.body as { text: string };
      await new Promise<void>((release) => held.set(text, release));
      // "first" and "steered" are answered by one turn, as the daemon does for a steered message.
      const reply = text === "first" || text === "steered" ? "one turn for both" : `echo: ${text}`;
      return {
        status: 200,
        body: { chat_id: "x", session_name: "john-doe", session_id: "s", reply, message_id: text },
      };
    });
    return { server, held };
  }

  it("sends a line typed while the agent works at once, says it is working, and shows one turn's reply once", async () => {
    const { server, held } = await heldDaemon();
    daemon = server;
    const input = new PassThrough();
    let screen = "";
    const running = runDispatch(["chat", "x@y.z"], {
      port: daemon.port,
      home,
      stdin: input,
      stdinIsTTY: true,
      onStdout: (text) => (screen += text),
    });
    input.write("first\r");
    await vi.waitFor(() => expect(held.has("first")).toBe(true));
    expect(withoutEscapes(screen)).toContain("you (working...)> ");
    // Typed while the first turn runs: sent now, not after the reply.
    input.write("steered\r");
    await vi.waitFor(() => expect(held.has("steered")).toBe(true));
    held.get("first")!();
    held.get("steered")!();
    await vi.waitFor(() => expect(withoutEscapes(screen)).toMatch(/you> $/));
    input.write("after\r");
    await vi.waitFor(() => expect(held.has("after")).toBe(true));
    held.get("after")!();
    await vi.waitFor(() => expect(withoutEscapes(screen)).toContain("john-doe> echo: after"));
    input.end();
    const result = await running;
    expect(result.exitCode).toBe(0);
    const shown = withoutEscapes(result.stdout);
    expect(shown.match(/john-doe> one turn for both/g)).toHaveLength(1);
    expect(daemon.requests.map((request) => (request.body as { text: string }).text)).toEqual([
      "first",
      "steered",
      "after",
    ]);
  });

  it("Ctrl-C drops a half-typed line, and on an empty line leaves at once", async () => {
    daemon = await echoDaemon();
    const input = new PassThrough();
    let screen = "";
    const running = runDispatch(["chat", "x@y.z"], {
      port: daemon.port,
      home,
      stdin: input,
      stdinIsTTY: true,
      onStdout: (text) => (screen += text),
    });
    input.write("never sent");
    await vi.waitFor(() => expect(withoutEscapes(screen)).toContain("never sent"));
    input.write("\x03");
    await vi.waitFor(() => expect(screen).toContain("^C"));
    input.write("\x03");
    const result = await running;
    expect(result.exitCode).toBe(0);
    expect(daemon.requests).toEqual([]);
  });

  it("leaves with exit 1 when the daemon is gone", async () => {
    const port = await closedPort();
    const input = new PassThrough();
    const running = runDispatch(["chat", "x@y.z"], { port, home, stdin: input, stdinIsTTY: true });
    input.write("hello\r");
    const result = await running;
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`error: dispatch is not running on 127.0.0.1:${port}`);
  });
});

describe("prefixLines", () => {
  it("indents later lines of a multi-line reply under the first", () => {
    expect(prefixLines("bot> ", "one\ntwo")).toBe("bot> one\n     two");
  });
});
