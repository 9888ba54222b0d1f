import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext } from "playwright-core";

/**
 * Debian's Chromium, driven by playwright-core: never a test tool's own browser download.
 * `CHROMIUM_PATH` points elsewhere when needed.
 */
export const CHROMIUM_CANDIDATES: readonly string[] = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
];

export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function findChromium(
  candidates: readonly string[] = [
    ...(process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : []),
    ...CHROMIUM_CANDIDATES,
  ],
): string | undefined {
  return candidates.find((candidate) => existsSync(candidate));
}

export function chromiumMissingMessage(
  candidates: readonly string[] = CHROMIUM_CANDIDATES,
): string {
  return (
    `The browser tests need Chromium, and it is not at ${candidates.join(" or ")}. ` +
    "Install it with `sudo apt-get install chromium` (Debian, Ubuntu), or run `npm test` (or " +
    "`.ci/run`), which installs it; or set CHROMIUM_PATH to a Chromium binary. (Do not use a test " +
    "tool's own browser download.)"
  );
}

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Starts headless Chromium with a fresh profile; throws, saying how to install it, if missing. */
export async function launchChromium(): Promise<Browser> {
  const executablePath = findChromium();
  if (executablePath === undefined) throw new Error(chromiumMissingMessage());
  const userDataDir = await mkdtemp(path.join(os.tmpdir(), "dispatch-chromium-"));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      args: [...CHROMIUM_ARGS],
      viewport: { width: 1280, height: 900 },
      timeout: 30_000,
    });
  } catch (error) {
    await rm(userDataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    context,
    close: async () => {
      await context.close().catch(() => undefined);
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}
