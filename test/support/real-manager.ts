import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { agentChildEnv } from "../../src/agent/child-env.js";
import { createClaudeSdkAgent } from "../../src/agent/claude-sdk-agent.js";
import { systemClock, type Clock } from "../../src/utils/clock.js";
import {
  SessionManager,
  type AgentPolicy,
  type Delivery,
  type SessionManagerOptions,
} from "../../src/core/session-manager.js";
import type { TurnReply } from "../../src/core/session.js";
import { asChatId, type ChatId } from "../../src/utils/ids.js";
import { createEnvelope } from "../../src/identity/wrap-message.js";
import { createLogger, type Logger } from "../../src/logging/logger.js";
import { openHomeRegistry } from "./home-registry.js";
import { openSessionArchive } from "../../src/daemon/session-archive.js";
import { createSessionFolders } from "../../src/store/session-folders.js";

/** The environment of a CLI child in tests: a temp HOME and the stand-in model. */
export function testAgentEnv(home: string, modelUrl: string): Record<string, string> {
  return agentChildEnv({
    PATH: process.env.PATH,
    HOME: home,
    ANTHROPIC_BASE_URL: modelUrl,
    ANTHROPIC_API_KEY: "test-key",
  });
}

export async function makeTempHome(): Promise<{ home: string; remove(): Promise<void> }> {
  const home = await mkdtemp(path.join(tmpdir(), "dispatch-test-"));
  return { home, remove: () => rm(home, { recursive: true, force: true }) };
}

export function registryPath(home: string): string {
  return path.join(home, "dispatch", "state", "sessions.json");
}

export interface RealManagerOptions {
  home: string;
  modelUrl: string;
  clock?: Clock;
  logger?: Logger;
  manager?: Partial<SessionManagerOptions>;
  onReply?: (reply: TurnReply) => void;
  policy?: AgentPolicy;
  sendInterim?: (chatId: ChatId, text: string) => Promise<void>;
  /** More variables for the CLI children (for example its retry settings). */
  env?: Record<string, string>;
}

/**
 * A SessionManager wired as the daemon wires it: real SDK, real registry (rows in the home's journal.db, sessions.json its export), real folders, the
 * real archive of forgotten sessions (without a transcript copy: this agent has none).
 */
export async function createRealManager(options: RealManagerOptions) {
  const logger = options.logger ?? createLogger({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const registry = await openHomeRegistry(options.home, logger);
  const transcriptsDir = path.join(options.home, "transcripts");
  const claudeDir = path.join(options.home, ".claude");
  const clock = options.clock ?? systemClock;
  const archive = await openSessionArchive({
    archiveDir: path.join(options.home, "dispatch", "state", "forgotten"),
    transcriptsDir,
    claudeDir,
    registry,
    clock,
    logger,
  });
  const manager = new SessionManager(
    {
      agent: createClaudeSdkAgent({
        logger,
        env: { ...testAgentEnv(options.home, options.modelUrl), ...options.env },
      }),
      registry,
      folders: createSessionFolders(transcriptsDir, {
        claudeDir,
        isArchived: (sessionName) => archive.holds(sessionName),
      }),
      archive,
      clock,
      logger,
      policyFor: () =>
        options.policy ?? { allowedTools: [], disallowedTools: [], permissionMode: "dontAsk" },
      onReply: options.onReply ?? (() => undefined),
      ...(options.sendInterim ? { sendInterim: options.sendInterim } : {}),
    },
    {
      healthCheckIntervalMs: 5 * 60_000,
      idleTimeoutMs: 2 * 3_600_000,
      maxConsecutiveErrors: 3,
      ...options.manager,
    },
  );
  manager.startup();
  return {
    manager,
    registry,
    async close() {
      await manager.shutdown();
      await registry.close();
    },
  };
}

/** A message as a channel would deliver it: normalised chat id, its text and envelope. */
export function textFrom(chatId: string, name: string, text: string, channel = "http"): Delivery {
  return {
    chatId: asChatId(chatId),
    text,
    envelope: createEnvelope({
      channel,
      receivedAt: new Date(),
      sender: { name, handle: chatId, tier: "favorite" },
    }),
    contactName: name,
    tier: "favorite",
    chatKind: "individual",
    channel,
  };
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `condition` until it holds; for states that only the OS can tell (a process's death). */
export async function waitUntil(
  condition: () => boolean,
  timeoutMs = 15_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
