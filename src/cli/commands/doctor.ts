/** `dispatch doctor`: reads what each check needs, prints ✓/✗ per check, exits 1 on a failure. */
import { constants } from "node:fs";
import { access, open, readFile, stat } from "node:fs/promises";
import { fileExists } from "../../utils/file-exists.js";
import path from "node:path";
import type { Command } from "commander";
import { readEnvironmentOverrides, resolvePaths } from "../../config/load-config.js";
import { STATIC_DEFAULTS, type SignalChannelConfig } from "../../config/schema.js";
import { listedAccounts } from "../../channels/signal/signal-channel.js";
import {
  createSignalRpc,
  METHOD_NOT_FOUND,
  SignalRpcError,
} from "../../channels/signal/signal-rpc.js";
import { DEFAULT_TIERS } from "../../utils/ids.js";
import { claudeCredentialsFile } from "../../agent/claude-cli-layout.js";
import { loadContacts } from "../../identity/contacts.js";
import { createApiClient, readApiToken } from "../api-client.js";
import { CommandFailed, type CliContext } from "../context.js";
import {
  checkApiToken,
  checkChatDb,
  checkClaudeCredentials,
  checkConfig,
  checkContacts,
  checkDaemon,
  checkNodeVersion,
  checkSignal,
  checkTranscriptsFolder,
  type CheckResult,
  type CheckStatus,
  type Outcome,
  type SignalObservation,
} from "../doctor-checks.js";

const MARKS: Record<CheckStatus, string> = { ok: "✓", fail: "✗", warn: "!", info: "-" };

export function registerDoctorCommand(program: Command, context: CliContext): void {
  program
    .command("doctor")
    .description("check the setup: config, contacts, daemon, token, credentials, folders")
    .action(async () => {
      const results = await runChecks(context);
      for (const result of results) context.print(renderCheck(result));
      const failed = results.filter((result) => result.status === "fail").length;
      if (failed > 0) {
        context.warn(`\n${failed} ${failed === 1 ? "check" : "checks"} failed.`);
        throw new CommandFailed();
      }
    });
}

/** `✓ message`, later lines of the message indented under the first. */
export function renderCheck(result: CheckResult): string {
  return `${MARKS[result.status]} ${result.message.split("\n").join("\n  ")}`;
}

export async function runChecks(context: CliContext): Promise<CheckResult[]> {
  const { env, homeDir, platform } = context.deps;
  const paths = resolvePaths(env, homeDir);
  const loaded = await attempt(() => context.config());
  const config = loaded.ok ? loaded.value.config : undefined;

  const contacts = await attempt(async () => {
    if (!(await fileExists(paths.contactsFile))) return { exists: false, contacts: 0, groups: 0 };
    const book = await loadContacts(paths.contactsFile, {
      knownTiers: config ? Object.keys(config.tiers) : DEFAULT_TIERS,
      defaultRegion: config?.defaultRegion,
    });
    const contactCount = book.entries().filter((entry) => entry.kind === "contact").length;
    return { exists: true, contacts: contactCount, groups: book.size - contactCount };
  });

  const port = readEnvironmentOverrides(env).overrides.port ?? config?.port ?? STATIC_DEFAULTS.port;
  const client = createApiClient({ port, readToken: () => readApiToken(env, paths.apiTokenFile) });
  const health = await attempt(() => client.health());
  const hasToken =
    Boolean(env["DISPATCH_API_TOKEN"]?.trim()) || (await fileExists(paths.apiTokenFile));
  const authorized =
    health.ok && hasToken
      ? await attempt(async () => {
          await client.listSessions();
          return true as const;
        })
      : undefined;

  const tokenStat = await attempt(() => stat(paths.apiTokenFile));
  const fileToken = await attempt(async () => (await readFile(paths.apiTokenFile, "utf8")).trim());
  const credentialsFile = claudeCredentialsFile(homeDir);
  const transcriptsDir = config?.transcriptsDir ?? path.join(homeDir, "transcripts");
  const existingFolder = await nearestExisting(transcriptsDir);
  const chatDb =
    config?.channels.imessage.dbPath ?? path.join(homeDir, "Library", "Messages", "chat.db");

  return [
    checkConfig(paths.configFile, loaded),
    checkContacts(paths.contactsFile, contacts),
    checkDaemon({ port, health, ...(authorized ? { authorized } : {}) }),
    checkApiToken({
      envToken: env["DISPATCH_API_TOKEN"],
      file: paths.apiTokenFile,
      stat: tokenStat.ok
        ? { mode: tokenStat.value.mode, isFile: tokenStat.value.isFile() }
        : undefined,
      ...(fileToken.ok ? { fileToken: fileToken.value } : {}),
      platform,
    }),
    checkClaudeCredentials({
      env,
      credentialsFile,
      credentialsFileExists: await fileExists(credentialsFile),
      platform,
      daemonInDemo: health.ok && health.value.demo === true,
    }),
    checkNodeVersion(context.deps.nodeVersion),
    checkTranscriptsFolder({
      folder: transcriptsDir,
      existing: existingFolder,
      writable: await attempt(async () => {
        await access(existingFolder, constants.W_OK);
        return true as const;
      }),
    }),
    checkChatDb({
      platform,
      enabled: config?.channels.imessage.enabled ?? true,
      dbPath: chatDb,
      ...(platform === "darwin" ? { readable: await attempt(() => canOpen(chatDb)) } : {}),
    }),
    checkSignal(await observeSignal(config?.channels.signal)),
  ];
}

/** signal-cli's daemon as the Signal channel would find it: there, which version, which accounts. */
async function observeSignal(config: SignalChannelConfig | undefined): Promise<SignalObservation> {
  const settings = config ?? { enabled: false, url: STATIC_DEFAULTS.signalUrl, account: "" };
  const observation: SignalObservation = { ...settings };
  if (!settings.enabled) return observation;
  const rpc = createSignalRpc({ url: settings.url, timeoutMs: 5_000 });
  observation.reachable = await attempt(async () => {
    await rpc.check();
    return true as const;
  });
  if (!observation.reachable.ok) return observation;
  observation.version = await attempt(async () => {
    const result = (await rpc.call("version")) as { version?: unknown } | null;
    return typeof result?.version === "string" ? result.version : "(version unknown)";
  });
  observation.accounts = await attempt(async () => {
    try {
      return listedAccounts(await rpc.call("listAccounts"));
    } catch (error) {
      if (error instanceof SignalRpcError && error.rpcCode === METHOD_NOT_FOUND) {
        return "single-account" as const;
      }
      throw error;
    }
  });
  return observation;
}

async function attempt<T>(work: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await work() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Opening, not `access()`: macOS privacy checks apply when the file is opened. */
async function canOpen(file: string): Promise<true> {
  const handle = await open(file, "r");
  await handle.close();
  return true;
}

async function nearestExisting(folder: string): Promise<string> {
  let current = path.resolve(folder);
  while (!(await fileExists(current))) {
    const parent = path.dirname(current);
    if (parent === current) return current;
    current = parent;
  }
  return current;
}
