import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
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
    expect(typed.stdout).toBe("you> john-doe> echo: hi\nyou> \n");
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

describe("prefixLines", () => {
  it("indents later lines of a multi-line reply under the first", () => {
    expect(prefixLines("bot> ", "one\ntwo")).toBe("bot> one\n     two");
  });
});
