import { readFileSync } from "node:fs";
import { open, readFile, rm } from "node:fs/promises";
import { DispatchError } from "../utils/errors.js";

export interface LockOwner {
  pid: number;
  started_at: string;
  port?: number;
}

export interface InstanceLock {
  /**
   * Whether a lock left behind was taken over: its daemon did not end cleanly (killed with
   * SIGKILL, crashed, cut off by a power cut or by a supervisor's timeout during its shutdown),
   * or chose to leave it for the next start to see (`transcript-catch-up.ts`).
   */
  readonly tookOverStale: boolean;
  release(): Promise<void>;
}

/**
 * One daemon per dispatch home. The lock file holds the owner's pid; a lock whose pid is no
 * longer running (a daemon killed with SIGKILL) is taken over, so it never blocks a restart.
 * A clean stop removes the file, so a lock found at start tells that the run before did not end
 * cleanly (`tookOverStale`).
 */
export async function acquireInstanceLock(
  path: string,
  owner: LockOwner,
  isRunning: (pid: number) => boolean = isProcessRunning,
): Promise<InstanceLock> {
  let tookOverStale = false;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    try {
      const handle = await open(path, "wx", 0o600);
      await handle.writeFile(JSON.stringify(owner) + "\n");
      await handle.sync();
      await handle.close();
      return { tookOverStale, release: () => releaseIfOwned(path, owner.pid) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new DispatchError(
          "lock_failed",
          `Could not create the lock file ${path}: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
    }
    const holder = await readOwner(path);
    if (holder && holder.pid !== owner.pid && isRunning(holder.pid)) {
      throw new DispatchError(
        "already_running",
        `dispatch is already running on this home (pid ${holder.pid}, started ${holder.started_at}` +
          `${holder.port ? `, port ${holder.port}` : ""}). Stop it first (kill ${holder.pid}), ` +
          `or give this one its own folder with DISPATCH_HOME.`,
      );
    }
    // Left by a daemon that is gone (or unreadable half-written): take it over.
    await rm(path, { force: true });
    tookOverStale = true;
  }
  throw new DispatchError(
    "lock_failed",
    `Could not take the lock file ${path}; another daemon keeps racing for it`,
  );
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const owner = JSON.parse(await readFile(path, "utf8")) as Partial<LockOwner>;
    return typeof owner.pid === "number" ? (owner as LockOwner) : undefined;
  } catch {
    return undefined;
  }
}

async function releaseIfOwned(path: string, pid: number): Promise<void> {
  const holder = await readOwner(path);
  if (holder?.pid === pid) await rm(path, { force: true });
}

export function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  return !isZombie(pid);
}

/**
 * A daemon killed with SIGKILL whose parent has not reaped it yet still answers `kill(pid, 0)`:
 * a start right after `kill -9` of `npm start`'s whole process group saw "already running". On
 * Linux `/proc` tells a zombie; elsewhere this says no and the start is refused as before.
 */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) state ...": comm may hold spaces and parentheses, so read after the last ")".
    const afterName = stat.lastIndexOf(")");
    return stat.slice(afterName + 2, afterName + 3) === "Z";
  } catch {
    return false;
  }
}
