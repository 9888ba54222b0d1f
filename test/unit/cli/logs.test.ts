import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { openLogFile } from "../../../src/logging/log-file.js";
import { runDispatch } from "./cli-harness.js";

let home: string;
let logFile: string;

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), "dispatch-cli-logs-"));
  logFile = join(home, "dispatch", "state", "logs", "dispatch.log");
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

const record = (msg: string, fields: Record<string, unknown> = {}) =>
  JSON.stringify({
    level: 30,
    time: "2026-02-07T15:00:00.000Z",
    pid: 7,
    hostname: "h",
    ...fields,
    msg,
  }) + "\n";

async function writeLog(name: string, text: string): Promise<void> {
  await mkdir(join(home, "dispatch", "state", "logs"), { recursive: true });
  await writeFile(join(home, "dispatch", "state", "logs", name), text);
}

describe("dispatch logs", () => {
  it("prints the last lines, one readable line per record, reading the rotated file when needed", async () => {
    await writeLog("dispatch.log.1", record("daemon-start", { port: 7878 }) + record("old-two"));
    await writeLog("dispatch.log", record("session-start", { chatId: "+15551234567" }));
    const result = await runDispatch(["logs", "--lines", "2"], { home });
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\[2026-02-07 \d\d:00:00\.000\] INFO: old-two$/);
    expect(lines[1]).toMatch(/INFO: session-start \{"chatId":"\+15551234567"\}$/);
    expect(result.stdout).not.toContain("hostname");
  });

  it("prints the JSON lines as written with --json", async () => {
    await writeLog("dispatch.log", record("a") + record("b"));
    const result = await runDispatch(["logs", "--json"], { home });
    expect(result.stdout).toBe(record("a") + record("b"));
  });

  it("says where the log would be when there is none, exit 1", async () => {
    const result = await runDispatch(["logs"], { home });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(`There is no log at ${logFile} yet`);
  });

  it("refuses a --lines that is not a whole number", async () => {
    const result = await runDispatch(["logs", "-n", "ten"], { home });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('--lines must be a whole number of 0 or more, got "ten"');
  });

  it("--follow prints what is written after it started, across a rotation, until Ctrl-C", async () => {
    await writeLog("dispatch.log", record("before"));
    let interrupt!: () => void;
    const interrupted = new Promise<void>((resolve) => (interrupt = resolve));
    let printed = "";
    const running = runDispatch(["logs", "--follow", "--json", "-n", "1"], {
      home,
      interrupted,
      onStdout: (text) => (printed += text),
    });
    await vi.waitFor(() => expect(printed).toBe(record("before")), { timeout: 10_000 });

    // The daemon's own writer, with a cap that makes the second line start a new file.
    const log = openLogFile({ path: logFile, maxBytes: 250, keep: 3 });
    log.write(record("one"));
    await vi.waitFor(() => expect(printed).toContain(record("one")), { timeout: 10_000 });
    log.write(record("two-in-a-new-file"));
    log.write(record("three"));
    await vi.waitFor(() => expect(printed).toContain(record("three")), { timeout: 10_000 });
    interrupt();
    const result = await running;
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(
      record("before") + record("one") + record("two-in-a-new-file") + record("three"),
    );
  });
});
