/**
 * A started session manager for unit tests, on a fake agent. What a test does not give is the
 * plainest there is: a manual clock, a memory logger, session folders and an archive in memory
 * (`fake-session-disk.ts`), a tier policy that allows no tool, replies dropped, and the limits of
 * the default configuration (a health check every 5 minutes, reaped after 2 hours idle, restarted
 * after 3 errors in a row).
 */
import {
  SessionManager,
  type SessionManagerDeps,
  type SessionManagerOptions,
} from "../../src/core/session-manager.js";
import { fakeSessionDisk } from "./fake-session-disk.js";
import { ManualClock } from "./manual-clock.js";
import { createMemoryLogger } from "./memory-logger.js";

const TEST_MANAGER_OPTIONS: SessionManagerOptions = {
  healthCheckIntervalMs: 5 * 60_000,
  idleTimeoutMs: 2 * 60 * 60_000,
  maxConsecutiveErrors: 3,
};

export function startTestManager(
  deps: Pick<SessionManagerDeps, "agent" | "registry"> & Partial<SessionManagerDeps>,
  options: Partial<SessionManagerOptions> = {},
): SessionManager {
  const manager = new SessionManager(
    {
      clock: new ManualClock(),
      logger: createMemoryLogger(),
      ...fakeSessionDisk(deps.registry),
      policyFor: () => ({ allowedTools: [], disallowedTools: [], permissionMode: "dontAsk" }),
      onReply: () => undefined,
      ...deps,
    },
    { ...TEST_MANAGER_OPTIONS, ...options },
  );
  manager.startup();
  return manager;
}
