import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { makeTempHome, waitUntil } from "../support/real-manager.js";

/**
 * `dispatch chat` typed at a real pseudo-terminal (util-linux `script` runs it on one) against a
 * real demo daemon. Regression: it read stdin without a terminal, so Up printed `^[[A` and Left
 * arrows were sent to the agent as escape codes.
 */
const REPO = path.resolve(import.meta.dirname, "../..");
const CLI = path.join(REPO, "src/cli/main.ts");
const KEY = {
  left: "\x1b[D",
  up: "\x1b[A",
  home: "\x01", // Ctrl-A
  end: "\x05", // Ctrl-E
  backspace: "\x7f",
  enter: "\r",
  leave: "\x04", // Ctrl-D
};

let home: { home: string; remove(): Promise<void> };
let daemon: DaemonProcess;
let chat: ChildProcessWithoutNullStreams | undefined;

beforeAll(async () => {
  home = await makeTempHome();
  daemon = await startDaemonProcess(
    { PATH: process.env.PATH, HOME: home.home, DISPATCH_PORT: String(await freePort()) },
    ["--demo"],
  );
});

afterAll(async () => {
  chat?.kill("SIGKILL");
  await daemon?.stop("SIGKILL");
  await home.remove();
});

const ESC = String.fromCharCode(27);
/** What the terminal shows, without cursor movements and line clearing. */
const plain = (text: string) => text.replace(new RegExp(`${ESC}\\[[0-9;]*[A-Za-z]`, "g"), "");

describe("dispatch chat on a terminal", () => {
  it("edits a line with arrow keys, Ctrl-A and Ctrl-E, recalls it with Up, and leaves on Ctrl-D", async () => {
    chat = spawn(
      "script",
      ["-qfec", `'${process.execPath}' --import tsx '${CLI}' chat +15551234567`, "/dev/null"],
      { cwd: REPO, env: { ...daemon.env, TERM: "xterm" } },
    );
    let screen = "";
    chat.stdout.setEncoding("utf8").on("data", (chunk: string) => (screen += chunk));
    chat.stderr.setEncoding("utf8").on("data", (chunk: string) => (screen += chunk));
    const exited = new Promise<number | null>((resolve) => chat!.once("exit", resolve));
    const showing = (text: string, after = 0) =>
      waitUntil(
        () => plain(screen.slice(after)).includes(text),
        30_000,
        `the screen to show ${text}`,
      );

    /**
     * One key at a time, as a person types: each waits until the terminal has answered the one
     * before (readline treats keys that arrive in one read as a paste, cursor keys and all).
     */
    const type = async (...keys: string[]) => {
      for (const key of keys) {
        const before = screen.length;
        chat!.stdin.write(key);
        await waitUntil(
          () => screen.length > before,
          30_000,
          `the terminal to answer ${JSON.stringify(key)}`,
        );
      }
    };
    const letters = (text: string) => [...text];

    await showing("you> ");
    // "remember the word kwi", then back two places to make it "kiwi", then "Please " in front.
    await type(...letters("remember the word kwi"), KEY.left, KEY.left, "i");
    await type(KEY.home, ...letters("Please "), KEY.end, "!");
    let mark = screen.length;
    await type(KEY.enter);
    await showing("you (working...)> ", mark);
    await showing("[stand-in model] OK, I will remember kiwi.", mark);

    // Up brings the line back; five backspaces take "kiwi!" off; "mango" goes in its place.
    await showing("you> ", mark);
    await type(KEY.up);
    await showing("Please remember the word kiwi!", mark);
    await type(...Array<string>(5).fill(KEY.backspace), ...letters("mango"));
    mark = screen.length;
    await type(KEY.enter);
    await showing("[stand-in model] OK, I will remember mango.", mark);

    await showing("you> ", mark);
    chat.stdin.write(KEY.leave);
    expect(await exited).toBe(0);
    expect(screen).not.toContain("^[[");

    // The agent got the edited lines, not escape codes.
    const recall = await daemon.api("POST", "/v1/messages", {
      chat_id: "+15551234567",
      text: "What word did I ask you to remember?",
      wait: true,
    });
    expect((recall.json as { reply: string }).reply).toBe(
      "[stand-in model] You asked me to remember mango.",
    );
  }, 120_000);
});
