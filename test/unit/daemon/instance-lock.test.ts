import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { acquireInstanceLock, isProcessRunning } from "../../../src/daemon/instance-lock.js";

let folder: string;
let lockPath: string;
beforeEach(async () => {
  folder = await mkdtemp(path.join(tmpdir(), "dispatch-lock-"));
  lockPath = path.join(folder, "daemon.lock");
});
afterEach(async () => {
  await rm(folder, { recursive: true, force: true });
});

describe("acquireInstanceLock", () => {
  it("refuses a second daemon while the first holds the lock", async () => {
    const first = await acquireInstanceLock(
      lockPath,
      { pid: 111, started_at: "t0", port: 7878 },
      () => true,
    );
    await expect(
      acquireInstanceLock(lockPath, { pid: 222, started_at: "t1" }, () => true),
    ).rejects.toMatchObject({
      code: "already_running",
      message: expect.stringContaining("pid 111") as unknown,
    });
    expect(first.tookOverStale).toBe(false);
    await first.release();
    const second = await acquireInstanceLock(lockPath, { pid: 222, started_at: "t1" }, () => true);
    expect(JSON.parse(await readFile(lockPath, "utf8"))).toMatchObject({ pid: 222 });
    // The first released its lock: a clean stop.
    expect(second.tookOverStale).toBe(false);
    await second.release();
  });

  it("takes over a lock left by a daemon that is gone", async () => {
    await writeFile(lockPath, JSON.stringify({ pid: 999_999, started_at: "earlier" }));
    const lock = await acquireInstanceLock(
      lockPath,
      { pid: 333, started_at: "now" },
      (pid) => pid !== 999_999,
    );
    expect(JSON.parse(await readFile(lockPath, "utf8"))).toMatchObject({ pid: 333 });
    expect(lock.tookOverStale).toBe(true);
    await lock.release();
  });

  it("takes over a half-written lock file", async () => {
    await writeFile(lockPath, '{"pid": 12');
    const lock = await acquireInstanceLock(lockPath, { pid: 444, started_at: "now" }, () => true);
    expect(JSON.parse(await readFile(lockPath, "utf8"))).toMatchObject({ pid: 444 });
    expect(lock.tookOverStale).toBe(true);
    await lock.release();
  });

  it("takes over a lock its own pid left (a start that failed and kept it for the next one)", async () => {
    await writeFile(lockPath, JSON.stringify({ pid: 777, started_at: "earlier" }));
    const lock = await acquireInstanceLock(lockPath, { pid: 777, started_at: "now" }, () => true);
    expect(lock.tookOverStale).toBe(true);
    await lock.release();
  });

  it("release leaves a lock another daemon took over alone", async () => {
    const lock = await acquireInstanceLock(lockPath, { pid: 555, started_at: "now" }, () => true);
    await writeFile(lockPath, JSON.stringify({ pid: 666, started_at: "later" }));
    await lock.release();
    expect(JSON.parse(await readFile(lockPath, "utf8"))).toMatchObject({ pid: 666 });
  });
});

// Regression: a start right after `kill -9` of `npm run demo`'s process group was refused as
// "already running": the killed daemon, not yet reaped by its parent, still answered kill(pid, 0).
describe.runIf(process.platform === "linux")("isProcessRunning", () => {
  it("says a killed process its parent has not reaped (a zombie) is not running", async () => {
    // `sleep 0.1` is left to a parent that never reaps it: `exec sleep 30` replaced the shell.
    const parent = spawn("sh", ["-c", "sleep 0.1 & echo $!; exec sleep 30"]);
    try {
      const pid = await new Promise<number>((resolve) =>
        parent.stdout.once("data", (chunk: Buffer) => resolve(Number(chunk.toString().trim()))),
      );
      expect(isProcessRunning(pid)).toBe(true);
      const deadline = Date.now() + 10_000;
      while (isProcessRunning(pid) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(isProcessRunning(pid)).toBe(false);
      expect(() => process.kill(pid, 0)).not.toThrow(); // still there, as a zombie
    } finally {
      parent.kill("SIGKILL");
    }
  });
});
