/**
 * Where dispatch keeps its files, and the configuration read from `config.json` and the
 * environment. The pure parts (`resolvePaths`, `parseConfig`, `validateConfig`,
 * `readEnvironmentOverrides`) take everything as arguments; only `loadConfig` reads the disk.
 */
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parse as parseJsonc, type ParseError } from "jsonc-parser";
import { DispatchError } from "../utils/errors.js";
import {
  databaseUrlMessage,
  databaseUrlProblem,
  defaultNodeId,
  isNodeId,
  NODE_ID_EXPECTATION,
} from "./database.js";
import { describeIssues } from "./problems.js";
import {
  createConfigSchema,
  expandHome,
  LOG_LEVELS,
  logLevelSchema,
  portSchema,
  type Config,
  type ConfigContext,
  type LogLevel,
} from "./schema.js";

export interface DispatchPaths {
  /** `~/dispatch`, or `DISPATCH_HOME`. */
  home: string;
  configFile: string;
  contactsFile: string;
  stateDir: string;
  /** `state/sessions.json` */
  registryFile: string;
  /** `state/journal.db` */
  journalFile: string;
  /** `state/api-token` */
  apiTokenFile: string;
  /** `state/daemon.lock` */
  lockFile: string;
  /** `state/logs/dispatch.log`: the daemon's log, size-capped (`dispatch logs`). */
  logFile: string;
}

/** Every file under the dispatch home. `DISPATCH_HOME` (`~` expanded, made absolute) moves it. */
export function resolvePaths(env: NodeJS.ProcessEnv, homeDir: string): DispatchPaths {
  const override = env["DISPATCH_HOME"]?.trim();
  const home = override
    ? path.resolve(expandHome(override, homeDir))
    : path.join(homeDir, "dispatch");
  const stateDir = path.join(home, "state");
  return {
    home,
    configFile: path.join(home, "config.json"),
    contactsFile: path.join(home, "contacts.json"),
    stateDir,
    registryFile: path.join(stateDir, "sessions.json"),
    journalFile: path.join(stateDir, "journal.db"),
    apiTokenFile: path.join(stateDir, "api-token"),
    lockFile: path.join(stateDir, "daemon.lock"),
    logFile: path.join(stateDir, "logs", "dispatch.log"),
  };
}

/** Thrown for any invalid setting; `problems` holds one sentence per problem. */
export class ConfigInvalidError extends DispatchError {
  readonly problems: readonly string[];

  constructor(message: string, problems: readonly string[], options?: { cause?: unknown }) {
    super("config_invalid", message, options);
    this.name = "ConfigInvalidError";
    this.problems = problems;
  }

  /** `heading (N problems):` then one problem a line. */
  static listing(heading: string, problems: readonly string[]): ConfigInvalidError {
    const list = problems.map((problem) => `  - ${problem}`).join("\n");
    return new ConfigInvalidError(
      `${heading} (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n${list}\n` +
        "Fix these and start again; docs/configuration.md describes every key.",
      problems,
    );
  }
}

export type ValidationResult = { ok: true; config: Config } | { ok: false; problems: string[] };

/** Checks an already-parsed value (the contents of `config.json`) and applies every default. */
export function validateConfig(
  input: unknown,
  context: ConfigContext & { sourceName?: string },
): ValidationResult {
  const schema = createConfigSchema(context);
  const result = schema.safeParse(input);
  if (result.success) return { ok: true, config: result.data };
  const sourceName = context.sourceName ?? "config.json";
  return {
    ok: false,
    problems: describeIssues(result.error.issues, input, { schema, sourceName }),
  };
}

export interface ParseContext extends ConfigContext {
  /** The file the text came from, named in every message. */
  file: string;
}

/** `config.json`'s text to a `Config`; throws `config_invalid` naming the file and each problem. */
export function parseConfig(text: string, context: ParseContext): Config {
  const input = parseJson(text, context.file);
  const result = validateConfig(input, { ...context, sourceName: path.basename(context.file) });
  if (!result.ok)
    throw ConfigInvalidError.listing(`Invalid configuration in ${context.file}`, result.problems);
  return result.config;
}

function parseJson(text: string, file: string): unknown {
  const withoutBom = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(withoutBom) as unknown;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    const problem = `${file} is not valid JSON: ${reason}${jsonErrorLocation(withoutBom, reason)}`;
    throw new ConfigInvalidError(
      `${problem}. Fix the file (JSON allows no comments or trailing commas), ` +
        "or remove it to use the defaults.",
      [problem],
      { cause: error },
    );
  }
}

/**
 * ` (line 3, column 5)`, from the "position N" in V8's message, unless it says so already. V8
 * names no position for an unexpected token (`Unexpected token '}', "..." is not valid JSON`);
 * then the position comes from jsonc-parser's strict parse of the same text.
 */
export function jsonErrorLocation(text: string, reason: string): string {
  if (/\bline \d+/.test(reason)) return "";
  const match = /position (\d+)/.exec(reason);
  if (/end of JSON/.test(reason)) return " (at the end of the file)";
  const position = match ? Number(match[1]) : firstSyntaxErrorOffset(text);
  if (position === undefined) return "";
  const before = text.slice(0, position);
  const line = before.split("\n").length;
  const column = position - before.lastIndexOf("\n");
  return ` (line ${line}, column ${column})`;
}

function firstSyntaxErrorOffset(text: string): number | undefined {
  const errors: ParseError[] = [];
  parseJsonc(text, errors, { disallowComments: true, allowTrailingComma: false });
  return errors[0]?.offset;
}

export interface EnvironmentOverrides {
  port?: number;
  logLevel?: LogLevel;
  /** `DISPATCH_DATABASE_URL`: `database.url`. */
  databaseUrl?: string;
  /** `DISPATCH_NODE_ID`: `database.nodeId`. */
  nodeId?: string;
}

/**
 * `DISPATCH_PORT`, `DISPATCH_LOG_LEVEL`, `DISPATCH_DATABASE_URL` and `DISPATCH_NODE_ID`, checked
 * as the same keys in `config.json` are. An empty variable counts as unset.
 */
export function readEnvironmentOverrides(env: NodeJS.ProcessEnv): {
  overrides: EnvironmentOverrides;
  problems: string[];
} {
  const overrides: EnvironmentOverrides = {};
  const problems: string[] = [];

  const rawPort = env["DISPATCH_PORT"]?.trim();
  if (rawPort) {
    const port = portSchema.safeParse(/^\d+$/.test(rawPort) ? Number(rawPort) : Number.NaN);
    if (port.success) overrides.port = port.data;
    else
      problems.push(
        `Expected \`DISPATCH_PORT\` to be an integer from 1 to 65535, got \`${rawPort}\``,
      );
  }

  const rawLevel = env["DISPATCH_LOG_LEVEL"]?.trim();
  if (rawLevel) {
    const level = logLevelSchema.safeParse(rawLevel.toLowerCase());
    if (level.success) overrides.logLevel = level.data;
    else
      problems.push(
        `Expected \`DISPATCH_LOG_LEVEL\` to be one of ${LOG_LEVELS.join(", ")}, got \`${rawLevel}\``,
      );
  }

  const rawUrl = env["DISPATCH_DATABASE_URL"]?.trim();
  if (rawUrl) {
    const problem = databaseUrlProblem(rawUrl);
    if (problem === undefined) overrides.databaseUrl = rawUrl;
    else problems.push(databaseUrlMessage("DISPATCH_DATABASE_URL", problem));
  }

  const rawNodeId = env["DISPATCH_NODE_ID"]?.trim();
  if (rawNodeId) {
    if (isNodeId(rawNodeId)) overrides.nodeId = rawNodeId;
    else
      problems.push(
        `Expected \`DISPATCH_NODE_ID\` to be ${NODE_ID_EXPECTATION}, got \`${rawNodeId.slice(0, 80)}\``,
      );
  }
  return { overrides, problems };
}

/**
 * The environment over the file. The node id's default names the port, so it follows
 * `DISPATCH_PORT` unless the file or `DISPATCH_NODE_ID` names the node.
 */
function applyOverrides(
  config: Config,
  overrides: EnvironmentOverrides,
  input: unknown,
  hostName: string,
): Config {
  const { databaseUrl, nodeId, ...flat } = overrides;
  const merged = { ...config, ...flat };
  const fileNodeId = (input as { database?: { nodeId?: unknown } } | undefined)?.database?.nodeId;
  return {
    ...merged,
    database: {
      url: databaseUrl ?? config.database.url,
      nodeId:
        nodeId ??
        (typeof fileNodeId === "string" ? fileNodeId : defaultNodeId(hostName, merged.port)),
    },
  };
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** `os.homedir()` */
  homeDir?: string;
  platform?: NodeJS.Platform;
  /** `os.totalmem()` */
  totalMemoryBytes?: number;
  /** `dispatch start --demo`: see `ConfigContext.demo`. */
  demo?: boolean;
  /** `os.hostname()`, for the default node id. */
  hostName?: string;
}

export interface LoadedConfig {
  config: Config;
  paths: DispatchPaths;
  /** False when there is no `config.json` and every setting is a default (or from the environment). */
  fromFile: boolean;
}

/**
 * Reads `config.json` under the dispatch home (a missing file means every default), then applies
 * the environment. Throws `config_invalid` listing every problem in the file and the environment
 * together, or `config_unreadable` when the file exists but cannot be read.
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const env = options.env ?? process.env;
  const hostName = options.hostName ?? os.hostname();
  const context: ConfigContext = {
    homeDir: options.homeDir ?? os.homedir(),
    platform: options.platform ?? process.platform,
    totalMemoryBytes: options.totalMemoryBytes ?? os.totalmem(),
    demo: options.demo ?? false,
    hostName,
  };
  const paths = resolvePaths(env, context.homeDir);
  const file = paths.configFile;

  const text = await readConfigText(file);
  const input = text === undefined ? {} : parseJson(text, file);
  const result = validateConfig(input, { ...context, sourceName: path.basename(file) });
  const environment = readEnvironmentOverrides(env);

  const problems = [...(result.ok ? [] : result.problems), ...environment.problems];
  if (!result.ok || problems.length > 0) {
    const heading = result.ok
      ? "Invalid configuration in the environment"
      : environment.problems.length > 0
        ? `Invalid configuration in ${file} and the environment`
        : `Invalid configuration in ${file}`;
    throw ConfigInvalidError.listing(heading, problems);
  }
  return {
    config: applyOverrides(result.config, environment.overrides, input, hostName),
    paths,
    fromFile: text !== undefined,
  };
}

async function readConfigText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new DispatchError(
      "config_unreadable",
      `Cannot read ${file}: ${(error as Error).message}. Check that it is a file you can read, ` +
        "or set DISPATCH_HOME to another folder.",
      { cause: error },
    );
  }
}
