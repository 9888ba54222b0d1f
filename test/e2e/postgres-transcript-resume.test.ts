/**
 * A session whose transcript lives only in PostgreSQL: the real SDK and its CLI, driven through
 * dispatch's agent adapter and session manager with the PostgreSQL transcript store as the SDK's
 * `sessionStore`, against the stand-in model (whose replies depend on the conversation it is
 * sent). After `~/.claude` is wiped, and through a connection of its own (as another process, or
 * another node, would have), the session resumes with its context. The daemon does not run on
 * PostgreSQL yet (docs/cluster.md); this wires what it will, as `daemon.ts` does for SQLite.
 */
import { rm, stat } from "node:fs/promises";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createClaudeSdkAgent } from "../../src/agent/claude-sdk-agent.js";
import { systemClock } from "../../src/utils/clock.js";
import { asChatId } from "../../src/utils/ids.js";
import { SessionManager } from "../../src/core/session-manager.js";
import { composeHandoff } from "../../src/daemon/handoff.js";
import { openSessionArchive } from "../../src/daemon/session-archive.js";
import { createLogger } from "../../src/logging/logger.js";
import { createMemoryLogger } from "../support/memory-logger.js";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import {
  openPostgresDatabase,
  type PostgresDatabase,
} from "../../src/store/postgres/postgres-database.js";
import { createPostgresTranscriptStore } from "../../src/store/postgres/postgres-transcript-store.js";
import { createSessionFolders } from "../../src/store/session-folders.js";
import { createTestDatabase } from "../support/postgres-server.js";
import { openHomeRegistry } from "../support/home-registry.js";
import { makeTempHome, testAgentEnv, textFrom } from "../support/real-manager.js";

const JOHN = "+15551234567";

let model: StandInModel;
let url: string;
let home: { home: string; remove(): Promise<void> };
let previousConfigDir: string | undefined;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  model = await startStandInModel();
  url = await createTestDatabase();
});
afterAll(async () => {
  await model.close();
});
beforeEach(async () => {
  home = await makeTempHome();
  // The SDK maps the CLI's transcript files to store keys through its own config folder: both
  // sides must agree on it (the daemon shares its HOME with its children).
  previousConfigDir = process.env.CLAUDE_CONFIG_DIR;
  process.env.CLAUDE_CONFIG_DIR = path.join(home.home, ".claude");
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  if (previousConfigDir === undefined) delete process.env.CLAUDE_CONFIG_DIR;
  else process.env.CLAUDE_CONFIG_DIR = previousConfigDir;
  await home.remove();
});

/**
 * One process's view: its own pool on the database, and a session manager wired as the daemon
 * wires its transcript store (the SDK's `sessionStore`, the resume check, the handoff, forget).
 */
async function processOnPostgres() {
  const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const database: PostgresDatabase = await openPostgresDatabase({
    url,
    logger: createMemoryLogger(),
  });
  const transcripts = createPostgresTranscriptStore({ database });
  const claudeDir = path.join(home.home, ".claude");
  const transcriptsDir = path.join(home.home, "transcripts");
  const agent = createClaudeSdkAgent({
    logger,
    env: { ...testAgentEnv(home.home, model.url), CLAUDE_CONFIG_DIR: claudeDir },
    transcripts,
  });
  const registry = await openHomeRegistry(home.home, logger);
  const archive = await openSessionArchive({
    archiveDir: path.join(home.home, "dispatch", "state", "forgotten"),
    transcriptsDir,
    claudeDir,
    registry,
    transcripts,
    clock: systemClock,
    logger,
  });
  const manager = new SessionManager(
    {
      agent,
      registry,
      folders: createSessionFolders(transcriptsDir, { claudeDir }),
      archive,
      clock: systemClock,
      logger,
      policyFor: () => ({ allowedTools: [], disallowedTools: [], permissionMode: "dontAsk" }),
      onReply: () => undefined,
      handoffFor: async (sessionId, reason) =>
        composeHandoff(await transcripts.recentEntries(sessionId, 200), reason),
      copiedMessagesOf: (sessionId) => transcripts.messageCount(sessionId),
    },
    { healthCheckIntervalMs: 5 * 60_000, idleTimeoutMs: 2 * 3_600_000, maxConsecutiveErrors: 3 },
  );
  manager.startup();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await manager.shutdown();
    await agent.close();
    await registry.close();
    await database.close();
  };
  closers.push(close);
  return { manager, registry, transcripts, close };
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

describe("a transcript kept in PostgreSQL", () => {
  it("brings a session back with its context after ~/.claude is wiped", async () => {
    const first = await processOnPostgres();
    const told = await first.manager.deliver(textFrom(JOHN, "John Doe", "remember the word cedar"));
    expect(told.isError).toBe(false);
    expect(told.text).toContain("I will remember cedar");
    await first.close();

    // Nothing of the CLI's own is left: only PostgreSQL holds the conversation.
    const claudeDir = path.join(home.home, ".claude");
    await rm(claudeDir, { recursive: true, force: true });
    expect(await exists(claudeDir)).toBe(false);

    const second = await processOnPostgres();
    // The whole turn is in the database: the user's message and the model's answer.
    expect(await second.transcripts.messageCount(told.agentSessionId)).toBe(2);
    const reply = await second.manager.deliver(
      textFrom(JOHN, "John Doe", "what word did I ask you to remember?"),
    );
    expect(reply.isError).toBe(false);
    expect(reply.text).toContain("You asked me to remember cedar");
    // Resumed, not rebuilt: the same session, nothing replaced, the resume check satisfied.
    expect(reply.agentSessionId).toBe(told.agentSessionId);
    expect(second.registry.get(asChatId(JOHN))!.previous_session_ids).toEqual([]);
    // The resumed session goes on writing to PostgreSQL.
    await second.close();
    const third = await processOnPostgres();
    expect(await third.transcripts.messageCount(told.agentSessionId)).toBe(4);
    const recent = await third.transcripts.recentEntries(told.agentSessionId, 200);
    const texts = JSON.stringify(recent);
    expect(texts).toContain("remember the word cedar");
    expect(texts).toContain("You asked me to remember cedar");
  });
});
