/**
 * Installs, removes and inspects dispatch as a user service: writes the definition from
 * `service-files.ts`, then loads it with `systemctl --user` or `launchctl`, run through an
 * injected `CommandRunner` (tests record the commands instead of running them).
 */
import { spawn } from "node:child_process";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { DispatchError, describeError } from "../../utils/errors.js";
import {
  LAUNCHD_LABEL,
  SYSTEMD_UNIT_NAME,
  renderLaunchdPlist,
  renderSystemdUnit,
  secretNames,
  serviceFilePath,
  type ServiceKind,
  type ServiceSpec,
} from "./service-files.js";

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program with arguments (no shell); rejects only when it cannot be started (ENOENT). */
export type CommandRunner = (program: string, args: readonly string[]) => Promise<CommandResult>;

export const runCommand: CommandRunner = (program, args) =>
  new Promise((resolve, reject) => {
    const child = spawn(program, [...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });

export interface ServiceContext {
  kind: ServiceKind;
  homeDir: string;
  env: NodeJS.ProcessEnv;
  /** For launchd's `gui/<uid>` domain. */
  uid: number;
  run: CommandRunner;
}

export interface InstallReport {
  file: string;
  /** Names of secret variables the file holds (it is then written with mode 0600). */
  secrets: string[];
  /** What was run, for the user to see. */
  commands: string[];
}

export function serviceFile(context: ServiceContext): string {
  return serviceFilePath(context.kind, context.homeDir, context.env);
}

export function renderService(kind: ServiceKind, spec: ServiceSpec): string {
  return kind === "systemd" ? renderSystemdUnit(spec) : renderLaunchdPlist(spec);
}

/** The commands that load (or reload) the written definition. */
export function loadCommands(context: ServiceContext): [string, string[]][] {
  if (context.kind === "systemd") {
    return [
      ["systemctl", ["--user", "daemon-reload"]],
      ["systemctl", ["--user", "enable", SYSTEMD_UNIT_NAME]],
      // restart, not start: a service already running picks up the new definition.
      ["systemctl", ["--user", "restart", SYSTEMD_UNIT_NAME]],
    ];
  }
  const domain = `gui/${context.uid}`;
  return [["launchctl", ["bootstrap", domain, serviceFile(context)]]];
}

export async function installService(
  context: ServiceContext,
  spec: ServiceSpec,
): Promise<InstallReport> {
  const file = serviceFile(context);
  const text = renderService(context.kind, spec);
  const secrets = secretNames(spec.environment);
  await mkdir(path.dirname(file), { recursive: true });
  if (context.kind === "launchd") await mkdir(spec.logDir, { recursive: true, mode: 0o700 });
  // A definition holding a credential is readable by the user alone.
  await writeFile(file, text, { mode: secrets.length > 0 ? 0o600 : 0o644 });
  const commands: string[] = [];
  if (context.kind === "launchd") {
    // A loaded agent must be booted out before it can be bootstrapped with the new plist.
    await context
      .run("launchctl", ["bootout", `gui/${context.uid}/${LAUNCHD_LABEL}`])
      .catch(() => undefined);
  }
  for (const [program, args] of loadCommands(context)) {
    commands.push([program, ...args].join(" "));
    await runOrExplain(context, program, args, file);
  }
  return { file, secrets, commands };
}

export interface UninstallReport {
  file: string;
  /** False when there was no definition to remove. */
  removed: boolean;
}

export async function uninstallService(context: ServiceContext): Promise<UninstallReport> {
  const file = serviceFile(context);
  const existed = await readFile(file, "utf8").then(
    () => true,
    () => false,
  );
  if (!existed) return { file, removed: false };
  if (context.kind === "systemd") {
    // Stops it too; a unit that was never loaded is no reason to keep the file.
    await context
      .run("systemctl", ["--user", "disable", "--now", SYSTEMD_UNIT_NAME])
      .catch(() => undefined);
    await rm(file, { force: true });
    await context.run("systemctl", ["--user", "daemon-reload"]).catch(() => undefined);
  } else {
    await context
      .run("launchctl", ["bootout", `gui/${context.uid}/${LAUNCHD_LABEL}`])
      .catch(() => undefined);
    await rm(file, { force: true });
  }
  return { file, removed: true };
}

export interface ServiceStatus {
  file: string;
  installed: boolean;
  /** Starts with the user's session (systemd `enabled`; a launchd agent always does). */
  enabled: boolean;
  running: boolean;
  pid: number | undefined;
  /** The manager's own word for the state: `active`, `inactive`, `failed`, `running`... */
  state: string;
}

export async function serviceStatus(context: ServiceContext): Promise<ServiceStatus> {
  const file = serviceFile(context);
  const installed = await readFile(file, "utf8").then(
    () => true,
    () => false,
  );
  if (context.kind === "systemd") {
    const shown = await runOrExplain(
      context,
      "systemctl",
      [
        "--user",
        "show",
        SYSTEMD_UNIT_NAME,
        "--property=ActiveState,SubState,UnitFileState,MainPID",
      ],
      file,
    );
    const properties = Object.fromEntries(
      shown.stdout
        .split("\n")
        .filter((line) => line.includes("="))
        .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
    );
    const pid = Number(properties["MainPID"]);
    const active = properties["ActiveState"] ?? "unknown";
    return {
      file,
      installed,
      enabled: properties["UnitFileState"] === "enabled",
      running: active === "active",
      pid: pid > 0 ? pid : undefined,
      state: [active, properties["SubState"]].filter(Boolean).join(" / "),
    };
  }
  const printed = await context
    .run("launchctl", ["print", `gui/${context.uid}/${LAUNCHD_LABEL}`])
    .catch((error: unknown) => {
      throw unavailable(context.kind, file, describeError(error));
    });
  const loaded = printed.code === 0;
  const state = /^\s*state = (.+)$/m.exec(printed.stdout)?.[1]?.trim();
  const pid = Number(/^\s*pid = (\d+)$/m.exec(printed.stdout)?.[1]);
  return {
    file,
    installed,
    enabled: installed,
    running: state === "running",
    pid: pid > 0 ? pid : undefined,
    state: loaded ? (state ?? "loaded") : "not loaded",
  };
}

/** Runs one command; a missing or unreachable service manager becomes advice, not a trace. */
async function runOrExplain(
  context: ServiceContext,
  program: string,
  args: string[],
  file: string,
): Promise<CommandResult> {
  let result: CommandResult;
  try {
    result = await context.run(program, args);
  } catch (error) {
    throw unavailable(context.kind, file, describeError(error));
  }
  if (result.code === 0) return result;
  const said = (result.stderr || result.stdout).trim().split("\n")[0] ?? "";
  if (context.kind === "systemd" && NO_USER_MANAGER.test(result.stderr + result.stdout)) {
    throw unavailable(context.kind, file, said);
  }
  throw new DispatchError(
    "service_command_failed",
    `\`${[program, ...args].join(" ")}\` failed (exit ${result.code}): ${said}. The service ` +
      `definition is ${file}; \`dispatch service status\` shows where it stands.`,
  );
}

/** What systemctl says when there is no user manager to talk to. */
const NO_USER_MANAGER =
  /Failed to connect to (the )?bus|not been booted with systemd|No medium found|\$DBUS_SESSION_BUS_ADDRESS|XDG_RUNTIME_DIR/i;

function unavailable(kind: ServiceKind, file: string, reason: string): DispatchError {
  if (kind === "launchd") {
    return new DispatchError(
      "service_manager_unavailable",
      `launchctl could not be run (${reason}). The agent definition is ${file}; load it with ` +
        `\`launchctl bootstrap gui/$(id -u) ${file}\`.`,
    );
  }
  return new DispatchError(
    "service_manager_unavailable",
    `systemd's user manager cannot be reached here (${reason}): this system runs no systemd user ` +
      "session (a container, WSL without systemd, a login without a session bus). " +
      `The unit file is ${file}, ready for when it can: on a systemd machine, log in (or run ` +
      "`loginctl enable-linger $USER` once) and run `dispatch service install` again. Until " +
      "then, run `dispatch start` under a supervisor of your own (docs/running-as-a-service.md).",
  );
}
