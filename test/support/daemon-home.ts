/**
 * A temporary HOME for a daemon child process (`startDaemonProcess`), as the end-to-end tests
 * set one up: `dispatch/contacts.json` and, when given, `dispatch/config.json` written, and the
 * environment that points the daemon at the stand-in model on a free port.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { freePort } from "./daemon-process.js";
import { makeTempHome } from "./real-manager.js";

export interface DaemonHome {
  /** The temporary HOME; dispatch's own home is `<home>/dispatch`. */
  home: string;
  /** `PATH`, `HOME`, a free `DISPATCH_PORT`, the model's URL and a test key, plus `env`. */
  env: NodeJS.ProcessEnv;
  remove(): Promise<void>;
}

export interface DaemonHomeOptions {
  /** The stand-in model's URL (`ANTHROPIC_BASE_URL`). */
  modelUrl: string;
  /** Written as `dispatch/contacts.json` when given. */
  contacts?: unknown;
  /** Written as `dispatch/config.json` when given. */
  config?: unknown;
  /** More variables (`DISPATCH_LOG_LEVEL`, `TMPDIR`, ...). */
  env?: NodeJS.ProcessEnv;
}

export async function makeDaemonHome(options: DaemonHomeOptions): Promise<DaemonHome> {
  const temp = await makeTempHome();
  const dispatchHome = path.join(temp.home, "dispatch");
  await mkdir(dispatchHome, { recursive: true });
  if (options.contacts !== undefined) {
    await writeFile(path.join(dispatchHome, "contacts.json"), JSON.stringify(options.contacts));
  }
  if (options.config !== undefined) {
    await writeFile(path.join(dispatchHome, "config.json"), JSON.stringify(options.config));
  }
  return {
    ...temp,
    env: await daemonEnv(temp.home, options.modelUrl, options.env),
  };
}

/** The environment a daemon child process runs with in a test: `home` as its HOME, a free port. */
export async function daemonEnv(
  home: string,
  modelUrl: string,
  extra: NodeJS.ProcessEnv = {},
): Promise<NodeJS.ProcessEnv> {
  return {
    PATH: process.env.PATH,
    HOME: home,
    DISPATCH_PORT: String(await freePort()),
    ...extra,
    ANTHROPIC_BASE_URL: modelUrl,
    ANTHROPIC_API_KEY: "test-key",
  };
}
