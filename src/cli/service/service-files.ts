/**
 * The service definitions `dispatch service install` writes: a systemd user unit on Linux, a
 * launchd agent on macOS. Pure: what goes in the file, where it goes, which environment it
 * carries, with the quoting each format needs. `service-manager.ts` writes and loads them.
 */
import path from "node:path";
import { DispatchError } from "../../utils/errors.js";

export const SYSTEMD_UNIT_NAME = "dispatch.service";
export const LAUNCHD_LABEL = "local.dispatch";

export type ServiceKind = "systemd" | "launchd";

export interface ServiceSpec {
  /** The node binary that runs dispatch now (`process.execPath`). */
  nodePath: string;
  /** `dist/cli/main.js` of this installation. */
  mainScript: string;
  demo: boolean;
  /** Variables the service needs: credentials, `DISPATCH_*`, `PATH` (`serviceEnvironment`). */
  environment: Record<string, string>;
  /** The user's home folder: the service's working directory. */
  homeDir: string;
  /** `~/dispatch/state/logs`: where launchd puts what dispatch writes to stderr. */
  logDir: string;
  /** How long a stop may take before it is killed: the shutdown grace and a margin. */
  stopTimeoutSeconds: number;
}

/** Which service manager this platform has; undefined where dispatch has none to offer. */
export function serviceKindFor(platform: NodeJS.Platform): ServiceKind | undefined {
  if (platform === "linux") return "systemd";
  if (platform === "darwin") return "launchd";
  return undefined;
}

/** `~/.config/systemd/user/dispatch.service` or `~/Library/LaunchAgents/local.dispatch.plist`. */
export function serviceFilePath(
  kind: ServiceKind,
  homeDir: string,
  env: NodeJS.ProcessEnv = {},
): string {
  if (kind === "launchd") {
    return path.join(homeDir, "Library", "LaunchAgents", `${LAUNCHD_LABEL}.plist`);
  }
  const configHome = env["XDG_CONFIG_HOME"]?.trim();
  const base =
    configHome && path.isAbsolute(configHome) ? configHome : path.join(homeDir, ".config");
  return path.join(base, "systemd", "user", SYSTEMD_UNIT_NAME);
}

const PASSED_NAMES = new Set([
  "PATH",
  "LANG",
  "LC_ALL",
  "TZ",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
]);
const PASSED_PREFIXES = ["DISPATCH_", "ANTHROPIC_", "CLAUDE_", "AWS_", "GOOGLE_", "VERTEX_"];
/** Values that are secrets: a file holding one is written readable by the user alone. */
const SECRET_PATTERN = /KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL/i;

/**
 * What of the current environment the service needs: a service manager starts it with almost
 * none of the login shell's, so credentials and dispatch's own settings are written into the
 * definition. `HOME` and `USER` are the manager's to set.
 */
export function serviceEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const [name, value] of Object.entries(env).sort(([left], [right]) =>
    left.localeCompare(right),
  )) {
    if (value === undefined || value === "") continue;
    if (PASSED_NAMES.has(name) || PASSED_PREFIXES.some((prefix) => name.startsWith(prefix))) {
      picked[name] = value;
    }
  }
  return picked;
}

/** The names of the variables that hold secrets, so the file is written private. */
export function secretNames(environment: Record<string, string>): string[] {
  return Object.keys(environment).filter((name) => SECRET_PATTERN.test(name));
}

function commandLine(spec: ServiceSpec): string[] {
  return [
    spec.nodePath,
    "--optimize-for-size",
    spec.mainScript,
    "start",
    ...(spec.demo ? ["--demo"] : []),
  ];
}

function assertOneLine(spec: ServiceSpec): void {
  for (const [name, value] of [
    ["node", spec.nodePath],
    ["dispatch", spec.mainScript],
    ...Object.entries(spec.environment),
  ]) {
    if (/[\n\r\0]/.test(value!)) {
      throw new DispatchError(
        "service_invalid",
        `${name} holds a line break, which a service definition cannot carry. Remove it from ` +
          "the value (or unset the variable) and run `dispatch service install` again.",
      );
    }
  }
}

/**
 * A systemd value in double quotes: backslash and quote escaped, `%` doubled (specifiers), and
 * in a command line `$` doubled too (variable expansion).
 */
function systemdQuote(value: string, inCommand: boolean): string {
  let escaped = value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/%/g, "%%");
  if (inCommand) escaped = escaped.replace(/\$/g, "$$$$");
  return `"${escaped}"`;
}

export function renderSystemdUnit(spec: ServiceSpec): string {
  assertOneLine(spec);
  const environment = Object.entries(spec.environment).map(
    ([name, value]) => `Environment=${systemdQuote(`${name}=${value}`, false)}`,
  );
  return [
    "# Written by `dispatch service install`; `dispatch service uninstall` removes it.",
    "[Unit]",
    "Description=dispatch: one persistent Claude agent session per chat",
    "After=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    `ExecStart=${commandLine(spec)
      .map((part) => systemdQuote(part, true))
      .join(" ")}`,
    // A path, taken as written (quotes would be part of it); only specifiers need escaping.
    `WorkingDirectory=${spec.homeDir.replace(/%/g, "%%")}`,
    ...environment,
    "Restart=on-failure",
    "RestartSec=2",
    "# Running turns get shutdownGraceSeconds to finish before systemd kills.",
    `TimeoutStopSec=${spec.stopTimeoutSeconds}`,
    "# SIGTERM to dispatch alone: it ends its agent processes itself.",
    "KillMode=mixed",
    "",
    "[Install]",
    "WantedBy=default.target",
    "",
  ].join("\n");
}

function xml(value: string): string {
  return value
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

export function renderLaunchdPlist(spec: ServiceSpec): string {
  assertOneLine(spec);
  const string = (value: string) => `<string>${xml(value)}</string>`;
  const environment = Object.entries(spec.environment).map(
    ([name, value]) => `    <key>${xml(name)}</key>${string(value)}`,
  );
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    "<!-- Written by `dispatch service install`; `dispatch service uninstall` removes it. -->",
    '<plist version="1.0">',
    "<dict>",
    `  <key>Label</key>${string(LAUNCHD_LABEL)}`,
    "  <key>ProgramArguments</key>",
    "  <array>",
    ...commandLine(spec).map((part) => `    ${string(part)}`),
    "  </array>",
    `  <key>WorkingDirectory</key>${string(spec.homeDir)}`,
    "  <key>EnvironmentVariables</key>",
    "  <dict>",
    ...environment,
    "  </dict>",
    "  <key>RunAtLoad</key><true/>",
    "  <key>KeepAlive</key><true/>",
    `  <key>ExitTimeOut</key><integer>${spec.stopTimeoutSeconds}</integer>`,
    "  <!-- The log itself is in dispatch.log beside it (dispatch logs); stdout would repeat it. -->",
    `  <key>StandardOutPath</key>${string("/dev/null")}`,
    `  <key>StandardErrorPath</key>${string(path.join(spec.logDir, "service-stderr.log"))}`,
    "</dict>",
    "</plist>",
    "",
  ].join("\n");
}
