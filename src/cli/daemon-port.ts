/**
 * Which port the CLI finds the daemon on. `DISPATCH_PORT` first, then `port` in config.json, then
 * 7878. A config.json that is invalid must not lock the user out of a daemon that is running (it
 * started before the bad edit): then the port comes from the running daemon's lock file, or from
 * a lenient read of `port` alone, with a warning that names the problem.
 */
import { readFile } from "node:fs/promises";
import {
  readEnvironmentOverrides,
  type DispatchPaths,
  type LoadedConfig,
} from "../config/load-config.js";
import { STATIC_DEFAULTS } from "../config/schema.js";
import { DispatchError } from "../utils/errors.js";

export interface DaemonPortSources {
  env: NodeJS.ProcessEnv;
  paths: Pick<DispatchPaths, "configFile" | "lockFile">;
  readConfig: () => Promise<LoadedConfig>;
  /** One line to stderr. */
  warn: (line: string) => void;
}

/** Errors of config.json itself, as opposed to the environment the user set on purpose. */
const FILE_PROBLEMS = new Set(["config_invalid", "config_unreadable"]);

export async function resolveDaemonPort(sources: DaemonPortSources): Promise<number> {
  const environment = readEnvironmentOverrides(sources.env);
  if (environment.overrides.port !== undefined) return environment.overrides.port;
  try {
    return (await sources.readConfig()).config.port;
  } catch (error) {
    // A bad DISPATCH_PORT is still an error: it was set for this command.
    if (!(error instanceof DispatchError) || !FILE_PROBLEMS.has(error.code)) throw error;
    if (environment.problems.length > 0) throw error;
    const fromLock = await portInFile(sources.paths.lockFile);
    const fromConfig =
      fromLock === undefined ? await portInFile(sources.paths.configFile) : undefined;
    const port = fromLock ?? fromConfig ?? STATIC_DEFAULTS.port;
    const source =
      fromLock !== undefined
        ? "the running daemon's"
        : fromConfig !== undefined
          ? "config.json's `port`"
          : "the default";
    sources.warn(
      `warning: ${sources.paths.configFile} is invalid, so using ${source} port ${port}. ` +
        "`dispatch doctor` lists the problems; the daemon keeps the configuration it started with.",
    );
    return port;
  }
}

/** The `port` of a JSON file (the lock file, or config.json read leniently), if it has a good one. */
async function portInFile(file: string): Promise<number | undefined> {
  try {
    const json = JSON.parse(await readFile(file, "utf8")) as { port?: unknown };
    const port = json.port;
    return Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65_535
      ? (port as number)
      : undefined;
  } catch {
    return undefined;
  }
}
