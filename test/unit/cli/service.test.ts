import { access, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  renderLaunchdPlist,
  renderSystemdUnit,
  secretNames,
  serviceEnvironment,
  serviceFilePath,
  type ServiceSpec,
} from "../../../src/cli/service/service-files.js";
import type { CommandResult, CommandRunner } from "../../../src/cli/service/service-manager.js";
import { runDispatch } from "./cli-harness.js";

const SPEC: ServiceSpec = {
  nodePath: "/usr/bin/node",
  mainScript: "/home/ada/src/dispatch/dist/cli/main.js",
  demo: false,
  environment: { ANTHROPIC_API_KEY: "sk-ant-1", PATH: "/usr/bin:/bin" },
  homeDir: "/home/ada",
  logDir: "/home/ada/dispatch/state/logs",
  stopTimeoutSeconds: 45,
};

describe("the service definitions", () => {
  it("a systemd user unit runs `dispatch start` with the environment it needs", () => {
    expect(renderSystemdUnit(SPEC)).toBe(
      [
        "# Written by `dispatch service install`; `dispatch service uninstall` removes it.",
        "[Unit]",
        "Description=dispatch: one persistent Claude agent session per chat",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        'ExecStart="/usr/bin/node" "--optimize-for-size" "/home/ada/src/dispatch/dist/cli/main.js" "start"',
        "WorkingDirectory=/home/ada",
        'Environment="ANTHROPIC_API_KEY=sk-ant-1"',
        'Environment="PATH=/usr/bin:/bin"',
        "Restart=on-failure",
        "RestartSec=2",
        "# Running turns get shutdownGraceSeconds to finish before systemd kills.",
        "TimeoutStopSec=45",
        "# SIGTERM to dispatch alone: it ends its agent processes itself.",
        "KillMode=mixed",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
      ].join("\n"),
    );
  });

  it("quotes what systemd would otherwise expand: spaces, quotes, %, $ and backslashes", () => {
    const unit = renderSystemdUnit({
      ...SPEC,
      demo: true,
      mainScript: "/home/ada/my 100% $code/dist/cli/main.js",
      environment: { ANTHROPIC_API_KEY: 'a"b\\c%d$e' },
    });
    expect(unit).toContain(
      'ExecStart="/usr/bin/node" "--optimize-for-size" "/home/ada/my 100%% $$code/dist/cli/main.js" "start" "--demo"',
    );
    // In Environment= a `$` is literal; `%` is still a specifier.
    expect(unit).toContain('Environment="ANTHROPIC_API_KEY=a\\"b\\\\c%%d$e"');
  });

  it("a launchd agent with escaped XML, its stderr in the log folder", () => {
    const plist = renderLaunchdPlist({
      ...SPEC,
      environment: { ANTHROPIC_API_KEY: "a<b>&'c\"" },
    });
    expect(plist).toContain("<key>Label</key><string>local.dispatch</string>");
    expect(plist).toContain(
      [
        "  <array>",
        "    <string>/usr/bin/node</string>",
        "    <string>--optimize-for-size</string>",
        "    <string>/home/ada/src/dispatch/dist/cli/main.js</string>",
        "    <string>start</string>",
        "  </array>",
      ].join("\n"),
    );
    expect(plist).toContain(
      "<key>ANTHROPIC_API_KEY</key><string>a&lt;b&gt;&amp;&apos;c&quot;</string>",
    );
    expect(plist).toContain("<key>RunAtLoad</key><true/>");
    expect(plist).toContain("<key>KeepAlive</key><true/>");
    expect(plist).toContain(
      "<key>StandardErrorPath</key><string>/home/ada/dispatch/state/logs/service-stderr.log</string>",
    );
  });

  it("refuses a value with a line break, naming it", () => {
    expect(() =>
      renderSystemdUnit({ ...SPEC, environment: { ANTHROPIC_API_KEY: "one\ntwo" } }),
    ).toThrow(/ANTHROPIC_API_KEY holds a line break/);
  });

  it("carries dispatch's settings, credentials and PATH, not the rest of the shell", () => {
    const environment = serviceEnvironment({
      PATH: "/bin",
      HOME: "/home/ada",
      DISPATCH_HOME: "/srv/d",
      DISPATCH_PORT: "7979",
      ANTHROPIC_API_KEY: "k",
      CLAUDE_CODE_USE_BEDROCK: "1",
      AWS_REGION: "eu-west-1",
      GITHUB_TOKEN: "not for the service",
      EMPTY: "",
      DISPATCH_LOG_LEVEL: "",
    });
    expect(environment).toEqual({
      ANTHROPIC_API_KEY: "k",
      AWS_REGION: "eu-west-1",
      CLAUDE_CODE_USE_BEDROCK: "1",
      DISPATCH_HOME: "/srv/d",
      DISPATCH_PORT: "7979",
      PATH: "/bin",
    });
    expect(secretNames(environment)).toEqual(["ANTHROPIC_API_KEY"]);
  });

  it("puts the unit under XDG_CONFIG_HOME when it is set", () => {
    expect(serviceFilePath("systemd", "/home/ada", {})).toBe(
      "/home/ada/.config/systemd/user/dispatch.service",
    );
    expect(serviceFilePath("systemd", "/home/ada", { XDG_CONFIG_HOME: "/cfg" })).toBe(
      "/cfg/systemd/user/dispatch.service",
    );
    expect(serviceFilePath("launchd", "/Users/ada")).toBe(
      "/Users/ada/Library/LaunchAgents/local.dispatch.plist",
    );
  });
});

/** Records each command; answers from `answer` (by default: success, no output). */
function recordingRunner(
  answer: (command: string) => Partial<CommandResult> | Error = () => ({}),
): CommandRunner & { commands: string[] } {
  const commands: string[] = [];
  const runner = (program: string, args: readonly string[]) => {
    const command = [program, ...args].join(" ");
    commands.push(command);
    const result = answer(command);
    if (result instanceof Error) return Promise.reject(result);
    return Promise.resolve({ code: 0, stdout: "", stderr: "", ...result });
  };
  return Object.assign(runner, { commands });
}

describe("dispatch service", () => {
  let home: string;
  let mainScript: string;
  let unitFile: string;

  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), "dispatch-service-"));
    mainScript = join(home, "src", "dist", "cli", "main.js");
    await mkdir(join(home, "src", "dist", "cli"), { recursive: true });
    await writeFile(mainScript, "");
    unitFile = join(home, ".config", "systemd", "user", "dispatch.service");
  });
  afterEach(async () => {
    await rm(home, { recursive: true, force: true });
  });

  /** `dispatch service ...`, without the harness's DISPATCH_API_TOKEN (a secret of its own). */
  const service = (
    args: string[],
    runner: CommandRunner,
    options: { env?: NodeJS.ProcessEnv; platform?: NodeJS.Platform; mainScript?: string } = {},
  ) =>
    runDispatch(["service", ...args], {
      home,
      runCommand: runner,
      mainScript,
      ...options,
      env: { DISPATCH_API_TOKEN: "", ...options.env },
    });

  it("install writes a private unit (it holds the API key), then enables and starts it", async () => {
    const runner = recordingRunner();
    const result = await service(["install"], runner, { env: { ANTHROPIC_API_KEY: "sk-1" } });
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    expect(runner.commands).toEqual([
      "systemctl --user daemon-reload",
      "systemctl --user enable dispatch.service",
      "systemctl --user restart dispatch.service",
    ]);
    const unit = await readFile(unitFile, "utf8");
    expect(unit).toContain(`"${mainScript}" "start"`);
    expect(unit).toContain('Environment="ANTHROPIC_API_KEY=sk-1"');
    expect(unit).toContain(`Environment="DISPATCH_HOME=${join(home, "dispatch")}"`);
    expect((await stat(unitFile)).mode & 0o777).toBe(0o600);
    expect(result.stdout).toContain(`Wrote ${unitFile} (mode 0600: it holds ANTHROPIC_API_KEY).`);
    expect(result.stdout).toContain("loginctl enable-linger");
  });

  it("install --demo runs the stand-in model, and warns of nothing about credentials", async () => {
    const runner = recordingRunner();
    const result = await service(["install", "--demo"], runner);
    expect(result.exitCode).toBe(0);
    expect(await readFile(unitFile, "utf8")).toContain('"start" "--demo"');
    expect((await stat(unitFile)).mode & 0o777).toBe(0o644);
    expect(result.stderr).toBe("");
  });

  it("install without credentials says the service will have none", async () => {
    const result = await service(["install"], recordingRunner());
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain("warning: no Claude credentials in this environment");
  });

  it("install where there is no systemd user manager says so and what to do, keeping the unit", async () => {
    const runner = recordingRunner(() => ({
      code: 1,
      stderr: "Failed to connect to bus: No medium found\n",
    }));
    const result = await service(["install", "--demo"], runner);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(
      "error: systemd's user manager cannot be reached here (Failed to connect to bus: No medium found)",
    );
    expect(result.stderr).toContain(`The unit file is ${unitFile}, ready for when it can`);
    expect(result.stderr).toContain("dispatch start");
    expect(runner.commands).toEqual(["systemctl --user daemon-reload"]);
    await expect(access(unitFile)).resolves.toBeUndefined();
  });

  it("install where systemctl is missing says so", async () => {
    const missing = Object.assign(new Error("spawn systemctl ENOENT"), { code: "ENOENT" });
    const result = await service(
      ["install", "--demo"],
      recordingRunner(() => missing),
    );
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(
      "error: systemd's user manager cannot be reached here (spawn systemctl ENOENT)",
    );
  });

  it("install reports another failure of systemctl with its words", async () => {
    const runner = recordingRunner((command) =>
      command.endsWith("restart dispatch.service")
        ? { code: 5, stderr: "Job for dispatch.service failed.\nSee journalctl." }
        : {},
    );
    const result = await service(["install", "--demo"], runner);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(
      "`systemctl --user restart dispatch.service` failed (exit 5): Job for dispatch.service failed.",
    );
  });

  it("install --print shows the unit and the commands and changes nothing", async () => {
    const runner = recordingRunner();
    const result = await service(["install", "--print"], runner);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`# ${unitFile}\n# Written by`);
    expect(result.stdout).toContain("# then: systemctl --user restart dispatch.service");
    expect(runner.commands).toEqual([]);
    await expect(access(unitFile)).rejects.toThrow();
  });

  it("install refuses when dispatch is not built, naming the file", async () => {
    const result = await service(["install"], recordingRunner(), {
      mainScript: join(home, "nowhere", "main.js"),
    });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("does not exist: the service runs the built dispatch");
  });

  it("status reads systemd's view of the unit", async () => {
    await service(["install", "--demo"], recordingRunner());
    const runner = recordingRunner(() => ({
      stdout: "ActiveState=active\nSubState=running\nUnitFileState=enabled\nMainPID=4242\n",
    }));
    const result = await service(["status"], runner);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(
      [
        `file       ${unitFile}`,
        "enabled    yes: starts when you log in",
        "running    yes (active / running, pid 4242)",
        "",
      ].join("\n"),
    );
    expect(runner.commands).toEqual([
      "systemctl --user show dispatch.service --property=ActiveState,SubState,UnitFileState,MainPID",
    ]);
  });

  it("status exits 1 when the service is not installed or not running", async () => {
    const inactive = () => ({
      stdout: "ActiveState=inactive\nSubState=dead\nUnitFileState=\nMainPID=0\n",
    });
    const missing = await service(["status"], recordingRunner(inactive));
    expect(missing.exitCode).toBe(1);
    expect(missing.stdout).toContain("(not installed)");
    expect(missing.stderr).toContain("dispatch service install");
    await service(["install", "--demo"], recordingRunner());
    const stopped = await service(["status"], recordingRunner(inactive));
    expect(stopped.exitCode).toBe(1);
    expect(stopped.stdout).toContain("running    no (inactive / dead)");
  });

  it("uninstall stops and disables the unit, removes it, and is happy to find none", async () => {
    await service(["install", "--demo"], recordingRunner());
    const runner = recordingRunner();
    const result = await service(["uninstall"], runner);
    expect(result.exitCode).toBe(0);
    expect(runner.commands).toEqual([
      "systemctl --user disable --now dispatch.service",
      "systemctl --user daemon-reload",
    ]);
    await expect(access(unitFile)).rejects.toThrow();
    const again = await service(["uninstall"], recordingRunner());
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toContain("No dispatch service is installed");
  });

  describe("on macOS", () => {
    const plist = () => join(home, "Library", "LaunchAgents", "local.dispatch.plist");

    it("install writes a launch agent, boots out an old one and bootstraps it", async () => {
      const runner = recordingRunner((command) =>
        command.startsWith("launchctl bootout") ? { code: 3, stderr: "No such process" } : {},
      );
      const result = await service(["install", "--demo"], runner, { platform: "darwin" });
      expect(result.exitCode).toBe(0);
      expect(runner.commands).toEqual([
        "launchctl bootout gui/501/local.dispatch",
        `launchctl bootstrap gui/501 ${plist()}`,
      ]);
      expect(await readFile(plist(), "utf8")).toContain("<string>--demo</string>");
      expect(result.stdout).not.toContain("loginctl");
    });

    it("status reads launchctl print", async () => {
      await service(["install", "--demo"], recordingRunner(), { platform: "darwin" });
      const runner = recordingRunner(() => ({
        stdout: "gui/501/local.dispatch = {\n\tstate = running\n\tpid = 777\n}\n",
      }));
      const result = await service(["status"], runner, { platform: "darwin" });
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toContain("running    yes (running, pid 777)");
      expect(runner.commands).toEqual(["launchctl print gui/501/local.dispatch"]);
    });

    it("uninstall boots the agent out and removes the plist", async () => {
      await service(["install", "--demo"], recordingRunner(), { platform: "darwin" });
      const runner = recordingRunner();
      expect((await service(["uninstall"], runner, { platform: "darwin" })).exitCode).toBe(0);
      expect(runner.commands).toEqual(["launchctl bootout gui/501/local.dispatch"]);
      await expect(access(plist())).rejects.toThrow();
    });
  });

  it("elsewhere says which systems it supports", async () => {
    const result = await service(["install"], recordingRunner(), { platform: "win32" });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain(
      "dispatch can install itself as a service on Linux (systemd) and macOS (launchd), not on win32",
    );
  });
});
