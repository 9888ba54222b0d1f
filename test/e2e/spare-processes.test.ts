import { execFileSync } from "node:child_process";
import { mkdir, readdir, readFile, realpath, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createClaudeSdkAgent, SEND_MESSAGE_TOOL } from "../../src/agent/claude-sdk-agent.js";
import { systemClock } from "../../src/utils/clock.js";
import { asChatId, type ChatId } from "../../src/utils/ids.js";
import { SessionManager, type AgentPolicy } from "../../src/core/session-manager.js";
import { createLogger } from "../../src/logging/logger.js";
import { readConversation } from "../../src/stand-in/compose-reply.js";
import { openSessionArchive } from "../../src/daemon/session-archive.js";
import { openHomeRegistry } from "../support/home-registry.js";
import { createSessionFolders } from "../../src/store/session-folders.js";
import { openStateDatabase } from "../../src/store/sqlite-database.js";
import { createSqliteTranscriptStore } from "../../src/store/sqlite-transcript-store.js";
import type { TranscriptStore } from "../../src/store/transcript-store.js";
import { isProcessAlive, testAgentEnv, textFrom, waitUntil } from "../support/real-manager.js";
import { useStandInHome } from "../support/stand-in-home.js";

const JOHN = "+15551234567";
const JANE = "+15559876543";
const READ_ONLY_TOOLS = ["Read", "Glob", "Grep", SEND_MESSAGE_TOOL];
const POLICY: AgentPolicy = {
  allowedTools: READ_ONLY_TOOLS,
  disallowedTools: [],
  permissionMode: "dontAsk",
  systemPromptAppend: "You answer one chat through dispatch.",
};

const bed = useStandInHome();

/** A SessionManager on the real SDK agent with spares, recording every CLI pid it starts. */
async function managerWithSpares(
  options: {
    spares?: number;
    policy?: AgentPolicy;
    transcripts?: TranscriptStore;
    env?: Record<string, string>;
  } = {},
) {
  const logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const started: number[] = [];
  const interim: { chatId: ChatId; text: string }[] = [];
  const agent = createClaudeSdkAgent({
    logger,
    env: { ...testAgentEnv(bed.home, bed.model.url), ...options.env },
    spares: options.spares ?? 1,
    spareAllowedTools: (options.policy ?? POLICY).allowedTools,
    spareLimits: { maxTurns: (options.policy ?? POLICY).maxTurns },
    processes: { started: (pid) => started.push(pid), exited: () => undefined },
    ...(options.transcripts ? { transcripts: options.transcripts } : {}),
  });
  const registry = await openHomeRegistry(bed.home, logger);
  const transcriptsDir = path.join(bed.home, "transcripts");
  const archive = await openSessionArchive({
    archiveDir: path.join(bed.home, "dispatch", "state", "forgotten"),
    transcriptsDir,
    claudeDir: path.join(bed.home, ".claude"),
    registry,
    ...(options.transcripts ? { transcripts: options.transcripts } : {}),
    clock: systemClock,
    logger,
  });
  const manager = new SessionManager(
    {
      agent,
      registry,
      folders: createSessionFolders(transcriptsDir),
      archive,
      clock: systemClock,
      logger,
      policyFor: () => options.policy ?? POLICY,
      onReply: () => undefined,
      sendInterim: (chatId, text) => {
        interim.push({ chatId, text });
        return Promise.resolve();
      },
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
  };
  bed.closers.push(close);
  /** Resolves with the pid of the next spare once `ready` spares are parked. */
  const sparesReady = async (ready = 1) => {
    await waitUntil(() => agent.sparesReady >= ready, 30_000, "a parked spare");
    return started.at(-1)!;
  };
  return { manager, registry, agent, started, interim, sparesReady, close };
}

const pidOf = (manager: SessionManager, chatId: string) =>
  manager.status(asChatId(chatId))?.live?.pid;

describe("prewarmed spare processes", () => {
  it("answers a new chat's first message from a claimed spare, then refills the pool", async () => {
    const { manager, registry, agent, started, sparesReady } = await managerWithSpares();
    const sparePid = await sparesReady();

    const reply = await manager.deliver(textFrom(JOHN, "John Doe", "remember the word walnut"));
    expect(reply.isError).toBe(false);
    expect(reply.text).toContain("I will remember walnut");
    expect(pidOf(manager, JOHN)).toBe(sparePid);
    // The claimed session's id comes from the CLI; the registry keeps the one it reported.
    expect(registry.get(asChatId(JOHN))!.session_id).toBe(reply.agentSessionId);

    const nextPid = await sparesReady();
    expect(nextPid).not.toBe(sparePid);
    expect(agent.sparesReady).toBe(1);
    await manager.deliver(textFrom(JANE, "Jane Roe", "hello"));
    expect(pidOf(manager, JANE)).toBe(nextPid);
    // Never more than one spare beyond the live sessions: two sessions and one refill.
    await sparesReady();
    expect(started).toHaveLength(3);
  });

  it("keeps a spare-started session's tools confined: no reading outside its own folder", async () => {
    const transcripts = path.join(bed.home, "transcripts");
    await mkdir(path.join(transcripts, "jane-roe"), { recursive: true });
    await writeFile(path.join(transcripts, "jane-roe", "diary.txt"), "JANE-PRIVATE-NOTE");
    const { manager, sparesReady } = await managerWithSpares();
    const sparePid = await sparesReady();
    const janeFile = path.join(transcripts, "jane-roe", "diary.txt");

    const read = await manager.deliver(
      textFrom(JOHN, "John Doe", `[[tool Read {"file_path":"${janeFile}"}]]`),
    );
    expect(pidOf(manager, JOHN)).toBe(sparePid);
    const grep = await manager.deliver(
      textFrom(JOHN, "John Doe", `[[tool Grep {"pattern":"PRIVATE","path":"${transcripts}"}]]`),
    );
    await writeFile(path.join(transcripts, "john-doe", "notes.txt"), "JOHN-OWN-NOTE");
    const own = await manager.deliver(
      textFrom(JOHN, "John Doe", '[[tool Read {"file_path":"notes.txt"}]]'),
    );

    expect(read.text).toContain("Tool Read returned an error");
    expect(grep.text).toContain("Tool Grep returned an error");
    expect(own.text).toContain("JOHN-OWN-NOTE");
    const johnRequests = bed.model
      .mainRequests()
      .filter((request) => request.userTexts.join("\n").includes("John Doe"));
    const sent = johnRequests.map((request) => JSON.stringify(request.body)).join("\n");
    expect(sent).not.toContain("JANE-PRIVATE-NOTE");
    expect(sent).toContain("blocks reads outside the working directories");
    // Tools the tier does not allow are not even shown to the model.
    const toolNames = new Set(
      johnRequests.flatMap((request) =>
        ((request.body as { tools?: { name: string }[] }).tools ?? []).map((tool) => tool.name),
      ),
    );
    expect(toolNames.has("Read")).toBe(true);
    for (const forbidden of ["Bash", "Write", "Edit", "WebFetch"])
      expect(toolNames.has(forbidden)).toBe(false);
  });

  it("points a claimed spare's auto-memory into its chat's folder, with HOME a git repository", async () => {
    // Regression: the CLI lets file tools read its memory folder past the tier's folder limit,
    // and keys that folder by the git root, which a home kept in git makes one for every chat.
    execFileSync("git", ["init", "-q", bed.home]);
    const root = (await realpath(bed.home)).replace(/[^A-Za-z0-9]/g, "-");
    const memoryFile = path.join(bed.home, ".claude", "projects", root, "memory", "MEMORY.md");
    await mkdir(path.dirname(memoryFile), { recursive: true });
    await writeFile(memoryFile, "- OWNER-MEMORY-3310\n");
    const { manager, sparesReady } = await managerWithSpares();
    const sparePid = await sparesReady();

    const read = await manager.deliver(
      textFrom(JOHN, "John Doe", `[[tool Read {"file_path":"${memoryFile}"}]]`),
    );
    expect(pidOf(manager, JOHN)).toBe(sparePid);
    expect(read.text).toContain("Tool Read returned an error");
    const sent = bed.model
      .mainRequests()
      .map((request) => JSON.stringify(request.body))
      .join("\n");
    expect(sent).not.toContain("OWNER-MEMORY-3310");
  });

  it("holds a claimed spare to its tier's narrow shell rule and folder", async () => {
    await writeFile(path.join(bed.home, "secret.txt"), "HOME-SECRET-2290");
    const policy = { ...POLICY, allowedTools: ["Read", "Bash(echo:*)"] };
    const { manager, sparesReady } = await managerWithSpares({ policy });
    const sparePid = await sparesReady();

    const echo = await manager.deliver(
      textFrom(JOHN, "John Doe", '[[tool Bash {"command":"echo spare-ok"}]]'),
    );
    expect(pidOf(manager, JOHN)).toBe(sparePid);
    expect(echo.text).toContain("Tool Bash returned: spare-ok");
    // Read-only commands the CLI approves by itself, with no path for the folder limit to catch.
    for (const command of ["id", "printenv"]) {
      const run = await manager.deliver(
        textFrom(JOHN, "John Doe", `[[tool Bash {"command":"${command}"}]]`),
      );
      expect(run.text, command).toContain("Tool Bash returned an error");
    }
    const read = await manager.deliver(
      textFrom(JOHN, "John Doe", `[[tool Read {"file_path":"${bed.home}/secret.txt"}]]`),
    );
    expect(read.text).toContain("Tool Read returned an error");
    const sent = bed.model
      .mainRequests()
      .map((request) => JSON.stringify(request.body))
      .join("\n");
    expect(sent).not.toContain("HOME-SECRET-2290");
    expect(sent).not.toContain("uid=");
    expect(sent).not.toContain("ANTHROPIC_API_KEY=");
  });

  it("stops a claimed spare's tool loop at its tier's maxTurns, then answers the next message", async () => {
    const policy = { ...POLICY, allowedTools: ["Glob"], maxTurns: 2 };
    const { manager, sparesReady } = await managerWithSpares({ policy });
    const sparePid = await sparesReady();

    const looped = await manager.deliver(
      textFrom(JOHN, "John Doe", '[[tool-loop Glob {"pattern":"*"}]]'),
    );
    expect(pidOf(manager, JOHN)).toBe(sparePid);
    expect(looped).toMatchObject({ isError: false, limit: "turns" });
    const loopRequests = bed.model
      .mainRequests()
      .filter((request) => request.userTexts.at(-1)?.includes("[[tool-loop"));
    expect(loopRequests).toHaveLength(2);
    const next = await manager.deliver(textFrom(JOHN, "John Doe", "tell me about hazel"));
    expect(next.text).toContain("hazel");
  });

  it("applies the tier's allow rules through the claim: writes inside the folder only", async () => {
    const policy = { ...POLICY, allowedTools: ["Read", "Write", "Edit"] };
    const { manager, sparesReady } = await managerWithSpares({ policy });
    const sparePid = await sparesReady();
    const outside = path.join(bed.home, "outside.txt");
    const folder = path.join(bed.home, "transcripts", "john-doe");

    const inside = await manager.deliver(
      textFrom(
        JOHN,
        "John Doe",
        `[[tool Write {"file_path":"${folder}/mine.txt","content":"MINE"}]]`,
      ),
    );
    expect(pidOf(manager, JOHN)).toBe(sparePid);
    const escape = await manager.deliver(
      textFrom(JOHN, "John Doe", `[[tool Write {"file_path":"${outside}","content":"ESCAPED"}]]`),
    );

    // In dontAsk mode a write needs an allow rule: this one came with the claim.
    expect(inside.text).not.toContain("error");
    expect(await readFile(path.join(folder, "mine.txt"), "utf8")).toBe("MINE");
    expect(escape.text).toContain("Tool Write returned an error");
    await expect(readFile(outside, "utf8")).rejects.toThrow(/ENOENT/);
  });

  it("routes send_message from each claimed spare to its own chat", async () => {
    const { manager, interim, sparesReady } = await managerWithSpares();
    const johnSpare = await sparesReady();
    const john = await manager.deliver(
      textFrom(JOHN, "John Doe", `[[tool ${SEND_MESSAGE_TOOL} {"text":"for john"}]]`),
    );
    const janeSpare = await sparesReady();
    const jane = await manager.deliver(
      textFrom(JANE, "Jane Roe", `[[tool ${SEND_MESSAGE_TOOL} {"text":"for jane"}]]`),
    );

    expect(pidOf(manager, JOHN)).toBe(johnSpare);
    expect(pidOf(manager, JANE)).toBe(janeSpare);
    expect(john.text).toContain(`Tool ${SEND_MESSAGE_TOOL} returned`);
    expect(jane.text).toContain(`Tool ${SEND_MESSAGE_TOOL} returned`);
    expect(interim).toEqual([
      { chatId: JOHN, text: "for john" },
      { chatId: JANE, text: "for jane" },
    ]);
  });

  it("gives a claimed spare's agent the claiming chat's recap when it compacts", async () => {
    const { manager, sparesReady } = await managerWithSpares();
    const sparePid = await sparesReady();
    await manager.deliver(textFrom(JOHN, "John Doe", "[[input-tokens 990000]] spare-m1"));
    expect(pidOf(manager, JOHN)).toBe(sparePid);
    const reply = await manager.deliver(textFrom(JOHN, "John Doe", "after it, spare-m2"));
    expect(reply.isError).toBe(false);
    const afterSummary = bed.model
      .mainRequests()
      .find((request) => request.userTexts.at(-1)?.includes("spare-m2"));
    const context = readConversation(afterSummary!.body)!.contextText;
    expect(context).toContain(`from="John Doe" handle="${JOHN}" tier="favorite"`);
  });

  it("resumes a chat that started on a spare with its context", async () => {
    const first = await managerWithSpares();
    const sparePid = await first.sparesReady();
    const told = await first.manager.deliver(
      textFrom(JOHN, "John Doe", "remember the word lantern"),
    );
    expect(pidOf(first.manager, JOHN)).toBe(sparePid);
    await first.close();

    const second = await managerWithSpares();
    const parked = await second.sparesReady();
    const reply = await second.manager.deliver(
      textFrom(JOHN, "John Doe", "what word did I ask you to remember?"),
    );
    expect(reply.text).toContain("You asked me to remember lantern");
    expect(reply.agentSessionId).toBe(told.agentSessionId);
    // A resume does not take the spare: it stays parked for the next new chat.
    expect(pidOf(second.manager, JOHN)).not.toBe(parked);
    expect(second.agent.sparesReady).toBe(1);
  });

  it("mirrors a spare-started chat to dispatch's transcript copy, which a resume can rely on", async () => {
    const logger = createLogger({ level: "silent" });
    const database = openStateDatabase({ path: path.join(bed.home, "state.db"), logger });
    bed.closers.push(() => {
      database.close();
      return Promise.resolve();
    });
    const transcripts = createSqliteTranscriptStore({ db: database });
    // The SDK maps the CLI's transcript paths to store keys through its own config folder: both
    // sides must agree on it (the daemon shares its HOME with its children).
    const configDir = path.join(bed.home, ".claude");
    const previousConfigDir = process.env.CLAUDE_CONFIG_DIR;
    process.env.CLAUDE_CONFIG_DIR = configDir;
    bed.closers.push(() => {
      if (previousConfigDir === undefined) delete process.env.CLAUDE_CONFIG_DIR;
      else process.env.CLAUDE_CONFIG_DIR = previousConfigDir;
      return Promise.resolve();
    });
    const env = { CLAUDE_CONFIG_DIR: configDir };
    const first = await managerWithSpares({ transcripts, env });
    const sparePid = await first.sparesReady();
    const told = await first.manager.deliver(textFrom(JOHN, "John Doe", "remember the word cedar"));
    expect(pidOf(first.manager, JOHN)).toBe(sparePid);
    expect((await transcripts.recentEntries(told.agentSessionId, 50)).length).toBeGreaterThan(0);
    await first.close();

    // The CLI's own copy is gone: the resume can only load dispatch's.
    await rm(path.join(configDir, "projects"), { recursive: true, force: true });
    const second = await managerWithSpares({ transcripts, env });
    const reply = await second.manager.deliver(
      textFrom(JOHN, "John Doe", "what word did I ask you to remember?"),
    );
    expect(reply.text).toContain("You asked me to remember cedar");
    expect(reply.agentSessionId).toBe(told.agentSessionId);
  });

  it("falls back to a plain start when the claim fails, losing no message", async () => {
    const { manager, sparesReady } = await managerWithSpares();
    const sparePid = await sparesReady();
    // A stopped spare cannot answer the claim; killed once claimed, it breaks the claim.
    process.kill(sparePid, "SIGSTOP");

    const delivered = manager.deliver(textFrom(JOHN, "John Doe", "remember the word pebble"));
    await waitUntil(() => pidOf(manager, JOHN) === sparePid, 15_000, "the claim");
    process.kill(sparePid, "SIGKILL");
    const reply = await delivered;
    expect(reply.isError).toBe(false);
    expect(reply.text).toContain("I will remember pebble");
    expect(pidOf(manager, JOHN)).not.toBe(sparePid);
    await waitUntil(() => !isProcessAlive(sparePid), 15_000, "the refused spare to exit");
    const again = await manager.deliver(
      textFrom(JOHN, "John Doe", "what word did I ask you to remember?"),
    );
    expect(again.text).toContain("You asked me to remember pebble");
  });

  it("leaves no process behind after shutdown, parked spares included", async () => {
    const { manager, started, sparesReady, close } = await managerWithSpares({ spares: 2 });
    await sparesReady(2);
    await manager.deliver(textFrom(JOHN, "John Doe", "hello"));
    await sparesReady(2);
    expect(started.length).toBeGreaterThanOrEqual(3);

    await close();
    for (const pid of started) {
      await waitUntil(() => !isProcessAlive(pid), 15_000, `agent process ${pid} to exit`);
    }
    // The SDK parks spares in folders under the config home; none is left.
    const parking = path.join(bed.home, ".claude", "spares");
    const left = await readdir(parking).catch(() => []);
    expect(left).toEqual([]);
  });
});
