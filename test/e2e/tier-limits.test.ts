import { execFileSync } from "node:child_process";
import { mkdir, readFile, realpath, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { daemonEnv } from "../support/daemon-home.js";
import { TURN_LIMIT_NOTICES } from "../../src/core/turn-limit.js";
import { makeTempHome } from "../support/real-manager.js";

/**
 * What a tier's agent can reach, and how long it may run, with the daemon as a user runs it and
 * a home folder kept in git (as dotfile users do): the CLI then sees every session folder as
 * part of one repository.
 */
const ADA = "+15550000001"; // admin
const SAM = "+15550000002"; // favorite: Read, Glob, Grep
const GIL = "+15550000003"; // helper: Read, Glob, Grep and `Bash(git status:*)`; 3 turns
const BO = "+15550000004"; // thrifty: Glob, and 1 cent per agent process

const SSH_KEY = "SSH-KEY-SECRET-9087";
const BASHRC = "BASHRC-SECRET-5521";
const COMMIT_MESSAGE = "dotfiles-commit-7781";
const ADMIN_MEMORY = "ADMIN-MEMORY-4471";
const OWNER_TASK = "OWNER-TASK-6620";

let model: StandInModel;
let home: { home: string; remove(): Promise<void> };
let daemon: DaemonProcess;

interface Reply {
  session_id: string;
  reply: string | null;
}

beforeAll(async () => {
  model = await startStandInModel();
  home = await makeTempHome();
  const git = (...args: string[]) =>
    execFileSync("git", [
      "-C",
      home.home,
      "-c",
      "user.name=Ada",
      "-c",
      "user.email=a@b.c",
      ...args,
    ]);
  git("init", "-q");
  await writeFile(path.join(home.home, ".bashrc"), `export PROMPT_TOKEN=${BASHRC}\n`);
  git("add", ".bashrc");
  git("commit", "-qm", COMMIT_MESSAGE);
  await mkdir(path.join(home.home, ".ssh"));
  await writeFile(path.join(home.home, ".ssh", "id_rsa"), SSH_KEY);
  // A task list of the owner's own Claude Code, in the CLI's config folder.
  await mkdir(path.join(home.home, ".claude", "tasks", "owner"), { recursive: true });
  await writeFile(path.join(home.home, ".claude", "tasks", "owner", "1.json"), OWNER_TASK);

  await mkdir(path.join(home.home, "dispatch"));
  await writeFile(
    path.join(home.home, "dispatch", "contacts.json"),
    JSON.stringify({
      contacts: [
        { name: "Ada Admin", tier: "admin", handles: [ADA] },
        { name: "Sam Stranger", tier: "favorite", handles: [SAM] },
        { name: "Gil Helper", tier: "helper", handles: [GIL] },
        { name: "Bo Thrifty", tier: "thrifty", handles: [BO] },
      ],
    }),
  );
  await writeFile(
    path.join(home.home, "dispatch", "config.json"),
    JSON.stringify({
      tiers: {
        helper: { allowedTools: ["Read", "Glob", "Grep", "Bash(git status:*)"], maxTurns: 3 },
        thrifty: { allowedTools: ["Glob"], maxTurns: 100, maxBudgetUsd: 0.01 },
      },
    }),
  );
  daemon = await startDaemonProcess(
    await daemonEnv(home.home, model.url, { DISPATCH_LOG_LEVEL: "debug" }),
  );
});

afterAll(async () => {
  await daemon?.stop("SIGKILL");
  await model.close();
  await home.remove();
});

async function send(chatId: string, text: string): Promise<Reply> {
  const response = await daemon.api("POST", "/v1/messages", { chat_id: chatId, text, wait: true });
  expect(response.status, JSON.stringify(response.json)).toBe(200);
  return response.json as Reply;
}

async function livePid(chatId: string): Promise<number | null> {
  const shown = await daemon.api("GET", `/v1/sessions/${encodeURIComponent(chatId)}`);
  return (shown.json as { pid: number | null }).pid;
}

/** Every model request of one contact's chat (the wrapped header names the contact). */
function requestsOf(name: string): string {
  return model
    .mainRequests()
    .filter((request) => request.userTexts.join("\n").includes(name))
    .map((request) => JSON.stringify(request.body))
    .join("\n");
}

describe("a tier's agent, with HOME a git repository", () => {
  it("gives no contact another's memory: the CLI's auto-memory and git context are off", async () => {
    // Where the CLI keeps auto-memory: keyed by the git root, so shared by every session folder.
    const root = (await realpath(home.home)).replace(/[^A-Za-z0-9]/g, "-");
    const memoryFile = path.join(home.home, ".claude", "projects", root, "memory", "MEMORY.md");
    await send(
      ADA,
      `[[tool Write ${JSON.stringify({ file_path: memoryFile, content: `- ${ADMIN_MEMORY}: the owner's PIN hint\n` })}]]`,
    );
    // Whether or not the admin's agent got to write it, a memory sits where the CLI would look.
    await mkdir(path.dirname(memoryFile), { recursive: true });
    await writeFile(memoryFile, `- ${ADMIN_MEMORY}: the owner's PIN hint\n`, { flag: "a" });

    const hello = await send(SAM, "hello there");
    expect(hello.reply).toContain("hello there");
    const read = await send(SAM, `[[tool Read {"file_path":"${memoryFile}"}]]`);
    expect(read.reply).toContain("Tool Read returned an error");

    const sam = requestsOf("Sam Stranger");
    expect(sam).not.toContain(ADMIN_MEMORY);
    expect(sam).not.toContain(COMMIT_MESSAGE);
    for (const request of model.mainRequests()) {
      expect(JSON.stringify(request.body)).not.toContain("persistent file-based memory");
    }
  });

  it("holds a tier with a narrow shell rule to its folder and its rule: git status runs, nothing past them", async () => {
    const token = (
      await readFile(path.join(home.home, "dispatch", "state", "api-token"), "utf8")
    ).trim();
    const status = await send(GIL, '[[tool Bash {"command":"git status"}]]');
    expect(status.reply).toContain("Tool Bash returned: On branch");

    for (const file of [
      path.join(home.home, ".ssh", "id_rsa"),
      path.join(home.home, "dispatch", "state", "api-token"),
      path.join(home.home, ".claude", "tasks", "owner", "1.json"),
    ]) {
      const read = await send(GIL, `[[tool Read {"file_path":"${file}"}]]`);
      expect(read.reply, file).toContain("Tool Read returned an error");
    }
    const grep = await send(GIL, `[[tool Grep {"pattern":"SECRET","path":"${home.home}"}]]`);
    expect(grep.reply).toContain("Tool Grep returned an error");
    // Read-only commands the CLI would run without a rule, and an allowed one with more after it.
    for (const command of [
      "git show HEAD:.bashrc",
      "git log",
      "id",
      "printenv",
      "cat ~/.ssh/id_rsa",
      "git status && cat ~/.ssh/id_rsa",
    ]) {
      const run = await send(GIL, `[[tool Bash ${JSON.stringify({ command })}]]`);
      expect(run.reply, command).toContain("Tool Bash returned an error");
    }

    const gil = requestsOf("Gil Helper");
    for (const secret of [
      SSH_KEY,
      BASHRC,
      token,
      OWNER_TASK,
      COMMIT_MESSAGE,
      "uid=",
      "ANTHROPIC_API_KEY=",
    ]) {
      expect(gil).not.toContain(secret);
    }
  });

  it("stops a turn stuck in a tool loop at the tier's maxTurns, tells the contact, and answers the next message", async () => {
    const before = model.mainRequests().length;
    const looped = await send(GIL, '[[tool-loop Glob {"pattern":"*"}]]');
    expect(looped.reply).toContain(TURN_LIMIT_NOTICES.turns);
    const loopRequests = model
      .mainRequests()
      .slice(before)
      .filter((request) => request.userTexts.at(-1)?.includes("[[tool-loop"));
    expect(loopRequests).toHaveLength(3);

    const next = await send(GIL, "tell me about walnuts");
    expect(next.reply).toContain("walnuts");
    expect(next.reply).not.toContain("I had to stop");
    expect(next.session_id).toBe(looped.session_id);
  });

  it("stops a turn at the tier's spending limit, tells the contact, and answers the next message in a fresh process", async () => {
    const looped = await send(BO, '[[tool-loop Glob {"pattern":"*"}]]');
    expect(looped.reply).toContain(TURN_LIMIT_NOTICES.spend);
    const pid = await livePid(BO);

    // The SDK counts spending per process: without a fresh one this turn would stop at once.
    const next = await send(BO, "tell me about pecans");
    expect(next.reply).toContain("pecans");
    expect(next.session_id).toBe(looped.session_id);
    expect(await livePid(BO)).not.toBe(pid);
  });
});
