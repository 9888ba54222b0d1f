import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { renderCheck } from "../../../src/cli/commands/doctor.js";
import {
  checkApiToken,
  checkChatDb,
  checkClaudeCredentials,
  checkConfig,
  checkContacts,
  checkDaemon,
  checkNodeVersion,
  checkTranscriptsFolder,
  compareVersions,
} from "../../../src/cli/doctor-checks.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { TOKEN, closedPort, runDispatch, startFakeDaemon, type FakeDaemon } from "./cli-harness.js";

const HEALTH = {
  status: "ok" as const,
  version: "0.1.0",
  uptime_seconds: 90,
  sessions: { registered: 3, live: 1 },
};

describe("doctor checks", () => {
  it("config: valid, absent (defaults) and invalid", () => {
    expect(checkConfig("/h/config.json", { ok: true, value: { fromFile: true } })).toEqual({
      status: "ok",
      message: "config.json is valid (/h/config.json).",
    });
    expect(
      checkConfig("/h/config.json", { ok: true, value: { fromFile: false } }).message,
    ).toContain("uses the defaults");
    const invalid = checkConfig("/h/config.json", {
      ok: false,
      error: new DispatchError("config_invalid", "Expected `port` to be an integer"),
    });
    expect(invalid).toEqual({ status: "fail", message: "Expected `port` to be an integer" });
  });

  it("contacts: a missing file warns, an invalid one fails", () => {
    expect(
      checkContacts("/c.json", { ok: true, value: { exists: false, contacts: 0, groups: 0 } })
        .status,
    ).toBe("warn");
    expect(
      checkContacts("/c.json", { ok: true, value: { exists: true, contacts: 2, groups: 1 } })
        .message,
    ).toBe("contacts.json is valid: 2 contacts, 1 group (/c.json).");
    expect(checkContacts("/c.json", { ok: false, error: new Error("bad tier") })).toEqual({
      status: "fail",
      message: "bad tier",
    });
  });

  it('contacts: counts are pluralised (bug: "1 contacts, 1 groups")', () => {
    expect(
      checkContacts("/c.json", { ok: true, value: { exists: true, contacts: 1, groups: 0 } })
        .message,
    ).toBe("contacts.json is valid: 1 contact, 0 groups (/c.json).");
  });

  it("daemon: running, not running, and running but refusing the token", () => {
    expect(checkDaemon({ port: 7878, health: { ok: true, value: HEALTH } })).toEqual({
      status: "ok",
      message:
        "dispatch 0.1.0 is running on 127.0.0.1:7878 (up 1m 30s, 1 live / 3 registered sessions).",
    });
    expect(
      checkDaemon({ port: 7878, health: { ok: false, error: new Error("not running") } }),
    ).toEqual({
      status: "fail",
      message: "not running",
    });
    const refused = checkDaemon({
      port: 7878,
      health: { ok: true, value: HEALTH },
      authorized: { ok: false, error: new DispatchError("unauthorized", "Wrong token.") },
    });
    expect(refused.status).toBe("fail");
    expect(refused.message).toContain("Wrong token.");
    expect(refused.message).toContain("DISPATCH_HOME");
  });

  it("API token: from the environment, missing, too open, private", () => {
    const base = { envToken: undefined, file: "/s/api-token", platform: "linux" as const };
    expect(
      checkApiToken({ ...base, envToken: "env-token-0123456789", stat: undefined }).status,
    ).toBe("ok");
    const missing = checkApiToken({ ...base, stat: undefined });
    expect(missing.status).toBe("fail");
    expect(missing.message).toContain("dispatch start");
    const open = checkApiToken({ ...base, stat: { mode: 0o100644, isFile: true } });
    expect(open).toEqual({
      status: "fail",
      message:
        "The API token file /s/api-token has mode 0644, so others may read it. Run `chmod 600 /s/api-token`.",
    });
    expect(checkApiToken({ ...base, stat: { mode: 0o100600, isFile: true } }).status).toBe("ok");
    expect(checkApiToken({ ...base, stat: { mode: 0o40700, isFile: false } }).status).toBe("fail");
    expect(
      checkApiToken({ ...base, platform: "win32", stat: { mode: 0o100666, isFile: true } }).status,
    ).toBe("ok");
  });

  it("API token: fails a short one from the environment or the file, saying how to make one", () => {
    const base = { envToken: undefined, file: "/s/api-token", platform: "linux" as const };
    const fromEnvironment = checkApiToken({ ...base, envToken: "a", stat: undefined });
    expect(fromEnvironment.status).toBe("fail");
    expect(fromEnvironment.message).toContain("DISPATCH_API_TOKEN is 1 character long");
    expect(fromEnvironment.message).toContain("openssl rand -hex 32");
    expect(fromEnvironment.message).toContain("dispatch refuses to start with it");
    const fromFile = checkApiToken({
      ...base,
      stat: { mode: 0o100600, isFile: true },
      fileToken: "short",
    });
    expect(fromFile.status).toBe("fail");
    expect(fromFile.message).toContain("The API token in /s/api-token is 5 characters long");
    expect(
      checkApiToken({
        ...base,
        stat: { mode: 0o100600, isFile: true },
        fileToken: "file-token-0123456789",
      }).status,
    ).toBe("ok");
  });

  it("Claude credentials: any of the three variables, the credentials file, or advice", () => {
    const base = {
      credentialsFile: "/h/.claude/.credentials.json",
      credentialsFileExists: false,
      platform: "linux" as const,
    };
    for (const variable of [
      "ANTHROPIC_API_KEY",
      "ANTHROPIC_AUTH_TOKEN",
      "CLAUDE_CODE_OAUTH_TOKEN",
    ]) {
      const result = checkClaudeCredentials({ ...base, env: { [variable]: "x" } });
      expect(result, variable).toEqual({
        status: "ok",
        message: `Claude credentials come from ${variable}.`,
      });
    }
    expect(checkClaudeCredentials({ ...base, env: {}, credentialsFileExists: true }).status).toBe(
      "ok",
    );
    const none = checkClaudeCredentials({ ...base, env: { ANTHROPIC_API_KEY: " " } });
    expect(none.status).toBe("fail");
    expect(none.message).toContain(
      "set ANTHROPIC_API_KEY or run `claude login`, or try `dispatch start --demo`",
    );
    // macOS keeps `claude login` in the Keychain, so absence is only a warning there.
    expect(checkClaudeCredentials({ ...base, env: {}, platform: "darwin" }).status).toBe("warn");
  });

  it("Node version: at least 20.17", () => {
    expect(checkNodeVersion("20.17.0").status).toBe("ok");
    expect(checkNodeVersion("22.1.0").status).toBe("ok");
    const old = checkNodeVersion("20.9.0");
    expect(old.status).toBe("fail");
    expect(old.message).toContain("needs 20.17.0 or newer");
    expect(checkNodeVersion("18.19.1").status).toBe("fail");
  });

  it("compareVersions compares numerically, not as text", () => {
    expect(compareVersions("20.9.0", "20.17.0")).toBe(-1);
    expect(compareVersions("v22.0.0", "20.17.0")).toBe(1);
    expect(compareVersions("20.17", "20.17.0")).toBe(0);
  });

  it("transcripts folder: writable, to be created, not writable", () => {
    expect(
      checkTranscriptsFolder({ folder: "/t", existing: "/t", writable: { ok: true, value: true } })
        .message,
    ).toBe("The transcripts folder /t is writable.");
    expect(
      checkTranscriptsFolder({
        folder: "/h/t",
        existing: "/h",
        writable: { ok: true, value: true },
      }).message,
    ).toContain("dispatch can create it");
    const denied = checkTranscriptsFolder({
      folder: "/t",
      existing: "/t",
      writable: {
        ok: false,
        error: Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" }),
      },
    });
    expect(denied.status).toBe("fail");
    expect(denied.message).toContain("transcriptsDir");
  });

  it("chat.db: macOS-only note on Linux, Full Disk Access hint on macOS", () => {
    expect(checkChatDb({ platform: "linux", enabled: true, dbPath: "/x" })).toEqual({
      status: "info",
      message: expect.stringContaining("macOS-only") as string,
    });
    const denied = checkChatDb({
      platform: "darwin",
      enabled: true,
      dbPath: "/Users/a/Library/Messages/chat.db",
      readable: {
        ok: false,
        error: Object.assign(new Error("operation not permitted"), { code: "EPERM" }),
      },
    });
    expect(denied.status).toBe("fail");
    expect(denied.message).toContain("Full Disk Access");
    const missing = checkChatDb({
      platform: "darwin",
      enabled: true,
      dbPath: "/nope",
      readable: { ok: false, error: Object.assign(new Error("no such file"), { code: "ENOENT" }) },
    });
    expect(missing.message).toContain("channels.imessage.dbPath");
    const readable = checkChatDb({
      platform: "darwin",
      enabled: true,
      dbPath: "/db",
      readable: { ok: true, value: true },
    });
    expect(readable.status).toBe("ok");
    expect(readable.message).toContain("Automation > Messages");
    expect(checkChatDb({ platform: "darwin", enabled: false, dbPath: "/db" }).status).toBe("info");
  });

  it("renders each status with its mark and indents continuation lines", () => {
    expect(renderCheck({ status: "ok", message: "fine" })).toBe("✓ fine");
    expect(renderCheck({ status: "fail", message: "bad:\n  - one" })).toBe("✗ bad:\n    - one");
  });
});

describe("dispatch doctor", () => {
  let home: string;
  let daemon: FakeDaemon | undefined;

  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), "dispatch-cli-"));
    await mkdir(join(home, "dispatch", "state"), { recursive: true });
  });
  afterEach(async () => {
    await daemon?.close();
    daemon = undefined;
    await rm(home, { recursive: true, force: true });
  });

  it("exits 0 when every check passes", async () => {
    daemon = await startFakeDaemon((request) =>
      request.url === "/healthz" ? { status: 200, body: HEALTH } : { status: 200, body: [] },
    );
    const tokenFile = join(home, "dispatch", "state", "api-token");
    await writeFile(tokenFile, `${TOKEN}\n`);
    await chmod(tokenFile, 0o600);
    await writeFile(join(home, "dispatch", "contacts.json"), JSON.stringify({ contacts: [] }));
    const result = await runDispatch(["doctor"], {
      home,
      port: daemon.port,
      env: { DISPATCH_API_TOKEN: "", ANTHROPIC_API_KEY: "sk-test" },
    });
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    expect(result.stdout).not.toContain("✗");
    expect(result.stdout).toContain(`✓ dispatch 0.1.0 is running on 127.0.0.1:${daemon.port}`);
    expect(result.stdout).toContain("✓ The API token file is present and private");
    // The token check went through with the file's token.
    expect(daemon.requests.find((request) => request.url === "/v1/sessions")?.authorization).toBe(
      `Bearer ${TOKEN}`,
    );
  });

  it("fails a DISPATCH_API_TOKEN and a token file too short to guard the API", async () => {
    const port = await closedPort();
    const tokenFile = join(home, "dispatch", "state", "api-token");
    await writeFile(tokenFile, "short\n");
    await chmod(tokenFile, 0o600);
    const fromFile = await runDispatch(["doctor"], {
      home,
      port,
      env: { DISPATCH_API_TOKEN: "", ANTHROPIC_API_KEY: "sk-test" },
    });
    expect(fromFile.exitCode).toBe(1);
    expect(fromFile.stdout).toContain(`✗ The API token in ${tokenFile} is 5 characters long`);
    const fromEnvironment = await runDispatch(["doctor"], {
      home,
      port,
      env: { DISPATCH_API_TOKEN: "a", ANTHROPIC_API_KEY: "sk-test" },
    });
    expect(fromEnvironment.exitCode).toBe(1);
    expect(fromEnvironment.stdout).toContain("✗ DISPATCH_API_TOKEN is 1 character long");
  });

  it("exits 1 and says what to do when the daemon is down and credentials are missing", async () => {
    const port = await closedPort();
    const result = await runDispatch(["doctor"], {
      home,
      port,
      env: { DISPATCH_API_TOKEN: "" },
    });
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain(`✗ dispatch is not running on 127.0.0.1:${port}`);
    expect(result.stdout).toContain("✗ No Claude credentials found");
    expect(result.stdout).toContain("✗ There is no API token at");
    expect(result.stdout).toContain("- The iMessage channel is macOS-only");
    expect(result.stderr).toContain("3 checks failed.");
  });

  it("warns, not fails, about missing credentials when the running daemon is in demo mode (bug: doctor failed against `npm run demo`)", async () => {
    daemon = await startFakeDaemon((request) =>
      request.url === "/healthz"
        ? { status: 200, body: { ...HEALTH, demo: true } }
        : { status: 200, body: [] },
    );
    const tokenFile = join(home, "dispatch", "state", "api-token");
    await writeFile(tokenFile, `${TOKEN}\n`);
    await chmod(tokenFile, 0o600);
    const result = await runDispatch(["doctor"], {
      home,
      port: daemon.port,
      env: { DISPATCH_API_TOKEN: "" },
    });
    expect(result.stdout).toContain(
      "! No Claude credentials found; the running daemon is in demo mode",
    );
    expect(result.stdout).not.toContain("✗");
    expect(result.exitCode).toBe(0);
  });

  it("reports an invalid config.json and carries on with the other checks", async () => {
    await writeFile(join(home, "dispatch", "config.json"), '{ "port": "x" }');
    const result = await runDispatch(["doctor"], {
      home,
      port: await closedPort(),
      env: { ANTHROPIC_API_KEY: "k" },
    });
    expect(result.exitCode).toBe(1);
    expect(result.stdout.split("\n")[0]).toMatch(/^✗ Invalid configuration in .*config\.json/);
    expect(result.stdout).toContain("✓ Node.js 20.17.0.");
  });
});
