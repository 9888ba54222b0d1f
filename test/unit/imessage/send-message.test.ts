import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  SEND_MESSAGE_APPLESCRIPT,
  defaultSendCommand,
  runCommand,
  sendArgv,
} from "../../../src/channels/imessage/send-message.js";

const SCRIPT_FILE = new URL(
  "../../../src/channels/imessage/send-message.applescript",
  import.meta.url,
);

describe("the bundled AppleScript", () => {
  it("is the same text in send-message.applescript and in send-message.ts", () => {
    expect(readFileSync(SCRIPT_FILE, "utf8")).toBe(SEND_MESSAGE_APPLESCRIPT);
  });

  it("takes the recipient and text from argv and sends to a buddy or a chat id", () => {
    expect(SEND_MESSAGE_APPLESCRIPT).toMatch(/^on run argv$/m);
    expect(SEND_MESSAGE_APPLESCRIPT).toContain(
      "send theText to buddy theRecipient of (1st account whose service type = iMessage)",
    );
    expect(SEND_MESSAGE_APPLESCRIPT).toContain("send theText to chat id theRecipient");
  });

  it("runs through osascript as -e lines, comments left out, nothing else added", () => {
    const command = defaultSendCommand();
    expect(command[0]).toBe("osascript");
    const lines = command.slice(1).filter((_, index) => index % 2 === 1);
    expect(
      command
        .slice(1)
        .filter((_, index) => index % 2 === 0)
        .every((flag) => flag === "-e"),
    ).toBe(true);
    expect(lines.join("\n")).toBe(
      SEND_MESSAGE_APPLESCRIPT.split("\n")
        .filter((line) => line.trim() && !line.startsWith("--"))
        .join("\n"),
    );
    expect(lines[0]).toBe("on run argv");
    expect(lines.at(-1)).toBe("end run");
  });
});

describe("sendArgv", () => {
  it("appends kind, recipient and text as three separate arguments", () => {
    expect(
      sendArgv(["osascript", "-e", "x"], { chatId: "c", kind: "chat", recipient: "any;+;c" }, "hi"),
    ).toEqual(["osascript", "-e", "x", "chat", "any;+;c", "hi"]);
  });
});

describe("runCommand", () => {
  it("passes arguments without a shell and reports exit code and output", async () => {
    const tricky = ["$(echo pwned)", "`id`", "a b", "'quoted'", '"double"', "-e", "; ls"];
    const result = await runCommand(
      [process.execPath, "-e", "console.log(JSON.stringify(process.argv.slice(1)))", ...tricky],
      { timeoutMs: 10_000 },
    );
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual(tricky);
  });

  it("returns stderr and the exit code of a failing command", async () => {
    const result = await runCommand(
      [process.execPath, "-e", "process.stderr.write('boom'); process.exit(3)"],
      { timeoutMs: 10_000 },
    );
    expect(result).toMatchObject({ exitCode: 3, stderr: "boom", timedOut: false });
  });

  it("kills a command that runs too long", async () => {
    const result = await runCommand([process.execPath, "-e", "setTimeout(() => {}, 60000)"], {
      timeoutMs: 200,
    });
    expect(result).toMatchObject({ exitCode: null, signal: "SIGKILL", timedOut: true });
  });

  it("rejects when the program does not exist", async () => {
    await expect(
      runCommand(["/nonexistent/osascript"], { timeoutMs: 1_000 }),
    ).rejects.toMatchObject({ code: "ENOENT" });
  });
});
