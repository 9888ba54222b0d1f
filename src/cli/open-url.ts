/**
 * Opens a link in the desktop's browser: `open` on macOS, `xdg-open` on Linux when there is a
 * display. Resolves false when it cannot (no display, no opener installed, another platform), so
 * the caller prints the link instead. It does not wait for the browser: an opener may stay
 * until the browser closes.
 */
import { spawn } from "node:child_process";

export interface OpenerEnvironment {
  platform: NodeJS.Platform;
  env: NodeJS.ProcessEnv;
}

/** The program and its arguments that open `url` here, or undefined when nothing can. */
export function openerFor(url: string, environment: OpenerEnvironment): string[] | undefined {
  if (environment.platform === "darwin") return ["open", url];
  if (environment.platform === "linux" || environment.platform === "freebsd") {
    const { DISPLAY, WAYLAND_DISPLAY } = environment.env;
    if (!DISPLAY && !WAYLAND_DISPLAY) return undefined;
    return ["xdg-open", url];
  }
  return undefined;
}

export function openUrl(url: string, environment: OpenerEnvironment): Promise<boolean> {
  const command = openerFor(url, environment);
  if (command === undefined) return Promise.resolve(false);
  const [program, ...args] = command as [string, ...string[]];
  return new Promise((resolve) => {
    const child = spawn(program, args, { stdio: "ignore", detached: true });
    child.once("error", () => resolve(false));
    child.once("spawn", () => {
      child.unref();
      resolve(true);
    });
  });
}
