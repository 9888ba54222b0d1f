import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderSystemdUnit } from "../../src/cli/service/service-files.js";

/**
 * The unit `dispatch service install` writes, checked by systemd's own parser
 * (`systemd-analyze verify`, from Debian's systemd package), with the values that need quoting.
 * Loading it needs a systemd user manager, which a test machine may not run; the commands that
 * do are tested with a recording runner (`test/unit/cli/service.test.ts`).
 */
let folder: string;

beforeAll(async () => {
  folder = await mkdtemp(path.join(tmpdir(), "dispatch unit %$ "));
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

describe("the systemd unit", () => {
  it("is accepted by systemd-analyze verify, awkward paths and values included", async () => {
    const unitFile = path.join(folder, "dispatch.service");
    await writeFile(
      unitFile,
      renderSystemdUnit({
        nodePath: process.execPath,
        mainScript: path.join(folder, '100% $HOME "quoted"', "dist", "cli", "main.js"),
        demo: true,
        environment: {
          ANTHROPIC_API_KEY: 'sk-ant-%h$USER"\\x',
          DISPATCH_HOME: path.join(folder, "home with spaces"),
          PATH: process.env.PATH ?? "/usr/bin",
        },
        homeDir: folder,
        logDir: path.join(folder, "logs"),
        stopTimeoutSeconds: 45,
      }),
    );
    const { stdout, stderr } = await promisify(execFile)("systemd-analyze", ["verify", unitFile]);
    expect(stderr).toBe("");
    expect(stdout).toBe("");
  });
});
