/**
 * The checks behind `dispatch doctor`. Each is a pure function of what was observed (the command
 * does the reading), so each can be tested with plain values. A failed check says what to do.
 */
import { describeError } from "../utils/errors.js";
import { CREDENTIAL_VARIABLES } from "../daemon/credentials.js";
import { weakTokenProblem } from "../channels/http/api-token.js";
import type { HealthView } from "../channels/http/control-plane.js";
import { formatDuration } from "./format-time.js";
import { plural } from "./plural.js";

export type CheckStatus = "ok" | "fail" | "warn" | "info";

export interface CheckResult {
  status: CheckStatus;
  /** A sentence a person can act on; may span lines. */
  message: string;
}

const ok = (message: string): CheckResult => ({ status: "ok", message });
const fail = (message: string): CheckResult => ({ status: "fail", message });

/** Attempted-but-maybe-failed reads, as the checks receive them. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

export function checkConfig(file: string, outcome: Outcome<{ fromFile: boolean }>): CheckResult {
  if (!outcome.ok) return fail(describeError(outcome.error));
  return outcome.value.fromFile
    ? ok(`config.json is valid (${file}).`)
    : ok(`There is no config.json at ${file}; dispatch uses the defaults.`);
}

export function checkContacts(
  file: string,
  outcome: Outcome<{ exists: boolean; contacts: number; groups: number }>,
): CheckResult {
  if (!outcome.ok) return fail(describeError(outcome.error));
  const { exists, contacts, groups } = outcome.value;
  if (!exists) {
    return {
      status: "warn",
      message: `There is no contacts file at ${file}: every sender is in the \`unknown\` tier.`,
    };
  }
  return ok(
    `contacts.json is valid: ${plural(contacts, "contact")}, ${plural(groups, "group")} (${file}).`,
  );
}

export interface DaemonObservation {
  port: number;
  health: Outcome<HealthView>;
  /** Whether an authenticated request went through; absent when it was not tried. */
  authorized?: Outcome<true>;
}

export function checkDaemon(observation: DaemonObservation): CheckResult {
  const { port, health, authorized } = observation;
  const address = `127.0.0.1:${port}`;
  if (!health.ok) return fail(describeError(health.error));
  if (authorized !== undefined && !authorized.ok) {
    return fail(
      `dispatch answers on ${address} but refused the request: ${describeError(authorized.error)} ` +
        "If it runs with another DISPATCH_HOME or DISPATCH_API_TOKEN, use the same here.",
    );
  }
  const { version, uptime_seconds: uptimeSeconds, sessions, status } = health.value;
  const state = status === "ok" ? "" : ", shutting down";
  return ok(
    `dispatch ${version} is running on ${address} (up ${formatDuration(uptimeSeconds * 1000)}` +
      `${state}, ${sessions.live} live / ${plural(sessions.registered, "registered session")}).`,
  );
}

export interface TokenObservation {
  /** DISPATCH_API_TOKEN, when set. */
  envToken: string | undefined;
  file: string;
  /** The file's stat, or undefined when it does not exist. */
  stat: { mode: number; isFile: boolean } | undefined;
  /** The file's token (trimmed), when it could be read. */
  fileToken?: string;
  platform: NodeJS.Platform;
}

export function checkApiToken(observation: TokenObservation): CheckResult {
  const { envToken, file, stat, platform } = observation;
  const fromEnvironment = envToken?.trim();
  if (fromEnvironment) {
    const problem = weakTokenProblem(fromEnvironment, "DISPATCH_API_TOKEN");
    return problem === undefined
      ? ok("The API token comes from DISPATCH_API_TOKEN.")
      : fail(`${problem} dispatch refuses to start with it.`);
  }
  if (stat === undefined) {
    return fail(
      `There is no API token at ${file}. dispatch writes it on its first start: run ` +
        "`dispatch start` (or set DISPATCH_API_TOKEN).",
    );
  }
  if (!stat.isFile) return fail(`${file} is not a file. Remove it and start dispatch again.`);
  const permissions = stat.mode & 0o777;
  // Windows has no owner-only mode bits to check.
  if (platform !== "win32" && permissions !== 0o600) {
    return fail(
      `The API token file ${file} has mode ${permissions.toString(8).padStart(4, "0")}, so others ` +
        `may read it. Run \`chmod 600 ${file}\`.`,
    );
  }
  const problem = observation.fileToken ? weakTokenProblem(observation.fileToken, file) : undefined;
  if (problem !== undefined) return fail(`${problem} dispatch refuses to start with it.`);
  return ok(`The API token file is present and private (${file}).`);
}

export interface CredentialObservation {
  env: NodeJS.ProcessEnv;
  /** `~/.claude/.credentials.json` */
  credentialsFile: string;
  credentialsFileExists: boolean;
  platform: NodeJS.Platform;
  /** The running daemon answers with the offline stand-in model, which needs no credentials. */
  daemonInDemo?: boolean;
}

export function checkClaudeCredentials(observation: CredentialObservation): CheckResult {
  const { env, credentialsFile, credentialsFileExists, platform } = observation;
  const variable = CREDENTIAL_VARIABLES.find((name) => Boolean(env[name]?.trim()));
  if (variable !== undefined) return ok(`Claude credentials come from ${variable}.`);
  if (env["CLAUDE_CODE_USE_BEDROCK"] === "1") return ok("Claude runs through Amazon Bedrock.");
  if (env["CLAUDE_CODE_USE_VERTEX"] === "1") return ok("Claude runs through Google Vertex AI.");
  if (credentialsFileExists) return ok(`Claude credentials found in ${credentialsFile}.`);
  if (observation.daemonInDemo) {
    return {
      status: "warn",
      message:
        "No Claude credentials found; the running daemon is in demo mode (the offline stand-in " +
        "model), which needs none. For real replies, set ANTHROPIC_API_KEY or run `claude login`, " +
        "then start dispatch without --demo.",
    };
  }
  const advice =
    "set ANTHROPIC_API_KEY or run `claude login`, or try `dispatch start --demo` (an offline " +
    "stand-in model).";
  if (platform === "darwin") {
    // On macOS `claude login` keeps its credentials in the Keychain, which we cannot see.
    return {
      status: "warn",
      message: `No Claude credentials in the environment; if you have not run \`claude login\` (kept in the Keychain), ${advice}`,
    };
  }
  return fail(`No Claude credentials found: ${advice}`);
}

export function checkNodeVersion(version: string, minimum = "20.17.0"): CheckResult {
  if (compareVersions(version, minimum) >= 0) return ok(`Node.js ${version}.`);
  return fail(
    `Node.js ${version} is too old: dispatch needs ${minimum} or newer. Install a current Node.js 20 or 22.`,
  );
}

export interface FolderObservation {
  folder: string;
  /** The folder itself, or the nearest parent that exists (the daemon creates the rest). */
  existing: string;
  writable: Outcome<true>;
}

export function checkTranscriptsFolder(observation: FolderObservation): CheckResult {
  const { folder, existing, writable } = observation;
  if (!writable.ok) {
    return fail(
      `The transcripts folder ${folder} is not writable (${describeError(writable.error)}` +
        `${existing === folder ? "" : `, at ${existing}`}). Fix its permissions, or set ` +
        "`transcriptsDir` in config.json to a folder you can write.",
    );
  }
  return existing === folder
    ? ok(`The transcripts folder ${folder} is writable.`)
    : ok(`The transcripts folder ${folder} does not exist yet; dispatch can create it.`);
}

export interface ChatDbObservation {
  platform: NodeJS.Platform;
  enabled: boolean;
  dbPath: string;
  /** Whether opening the file for reading worked; absent when not tried. */
  readable?: Outcome<true>;
}

export function checkChatDb(observation: ChatDbObservation): CheckResult {
  const { platform, enabled, dbPath, readable } = observation;
  if (platform !== "darwin") {
    return {
      status: "info",
      message:
        "The iMessage channel is macOS-only; here, talk to dispatch through the HTTP API " +
        "(`dispatch send`, `dispatch chat`).",
    };
  }
  if (!enabled) {
    return {
      status: "info",
      message: "The iMessage channel is off (`channels.imessage.enabled`).",
    };
  }
  if (readable === undefined || readable.ok) {
    return ok(
      `The Messages database ${dbPath} is readable. Sending needs the Automation permission: ` +
        "macOS asks once, at the first reply, to let your terminal (or node) control Messages; if " +
        "replies fail with error -1743, allow it in System Settings > Privacy & Security > " +
        "Automation > Messages.",
    );
  }
  const code = (readable.error as NodeJS.ErrnoException).code;
  if (code === "ENOENT") {
    return fail(
      `There is no Messages database at ${dbPath}. Sign in to Messages on this Mac, or set ` +
        "`channels.imessage.dbPath` in config.json.",
    );
  }
  return fail(
    `Cannot read ${dbPath} (${code ?? describeError(readable.error)}). Give Full Disk Access to ` +
      "your terminal (and to node, if dispatch runs as a service) in System Settings > Privacy & " +
      "Security > Full Disk Access, then open a new terminal.",
  );
}

export interface SignalObservation {
  enabled: boolean;
  url: string;
  account: string;
  /** `GET /api/v1/check`; absent when the channel is off. */
  reachable?: Outcome<true>;
  /** signal-cli's `version`; absent when not reached. */
  version?: Outcome<string>;
  /** `listAccounts`: the numbers it holds, or "single-account" for a daemon started with `-a`. */
  accounts?: Outcome<string[] | "single-account">;
}

export function checkSignal(observation: SignalObservation): CheckResult {
  const { enabled, url, account, reachable, version, accounts } = observation;
  if (!enabled) {
    return {
      status: "info",
      message: "The Signal channel is off (`channels.signal.enabled`); docs/signal.md sets it up.",
    };
  }
  if (reachable === undefined || !reachable.ok) {
    const cause = reachable && !reachable.ok ? describeError(reachable.error) : "not tried";
    return fail(
      `signal-cli's daemon at ${url} cannot be reached (${cause}). Start it with ` +
        `\`signal-cli -a ${account} daemon --http ${new URL(url).host} --receive-mode=on-connection\`, ` +
        "or set channels.signal.url to the address it listens on.",
    );
  }
  const named = version?.ok ? `signal-cli ${version.value}` : "signal-cli";
  if (accounts === undefined || !accounts.ok) {
    const cause = accounts && !accounts.ok ? describeError(accounts.error) : "not asked";
    return fail(`${named} answers at ${url}, but listing its accounts failed: ${cause}`);
  }
  if (accounts.value === "single-account") {
    return ok(
      `${named} answers at ${url} for one account (started with -a), which it does only for a ` +
        `registered one; make sure that is ${account} (channels.signal.account).`,
    );
  }
  if (accounts.value.includes(account)) {
    return ok(`${named} answers at ${url} and holds the registered account ${account}.`);
  }
  const held = accounts.value.length === 0 ? "no account" : accounts.value.join(", ");
  return fail(
    `${named} at ${url} does not hold ${account} (channels.signal.account); it holds ${held}. ` +
      `Register or link it (\`signal-cli -a ${account} register\`, or \`link\`), or set ` +
      "channels.signal.account to one it holds.",
  );
}

/** Numeric comparison of dotted versions; a leading "v" is ignored. */
export function compareVersions(left: string, right: string): number {
  const parts = (version: string): number[] =>
    version
      .replace(/^v/, "")
      .split(".")
      .map((part) => Number.parseInt(part, 10) || 0);
  const [leftParts, rightParts] = [parts(left), parts(right)];
  for (let index = 0; index < Math.max(leftParts.length, rightParts.length); index++) {
    const difference = (leftParts[index] ?? 0) - (rightParts[index] ?? 0);
    if (difference !== 0) return Math.sign(difference);
  }
  return 0;
}
