import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { makeDaemonHome, type DaemonHome } from "../support/daemon-home.js";

/**
 * A resume the Claude CLI cannot honour from its own files, with dispatch's copy of the transcript
 * intact: the transcripts folder moved (config `transcriptsDir`), so the copy is filed under the
 * old folder's project, and the CLI's own transcript is cut short (one chat) or gone (the other).
 * The SDK asks the copy under the new folder's project; `withMovedSessions` finds it under the old
 * one and copies it over, so both sessions resume whole under their own ids and answer from their
 * history (before it, both were rebuilt as new sessions from a summary: the check after each
 * resume, `core/resume-check.ts`, which stays as the safety net and has its unit tests).
 */
const JOHN = "+15551234567";
const JANE = "+15559876543";

let model: StandInModel;
let home: DaemonHome;
let env: NodeJS.ProcessEnv;
let daemon: DaemonProcess | undefined;

interface Reply {
  reply: string;
  session_id: string;
}

interface SessionView {
  session_id: string;
  previous_session_ids: { session_id: string; reason: string }[];
}

async function writeConfig(transcriptsDir: string): Promise<void> {
  await writeFile(
    path.join(home.home, "dispatch", "config.json"),
    JSON.stringify({ transcriptsDir, spareProcesses: 0 }),
  );
}

async function send(chatId: string, text: string): Promise<Reply> {
  const response = await daemon!.api("POST", "/v1/messages", { chat_id: chatId, text, wait: true });
  expect(response.status).toBe(200);
  return response.json as Reply;
}

/** The CLI's own transcript of a session, in whichever project folder it is. */
async function cliTranscriptOf(sessionId: string): Promise<string> {
  const projects = path.join(home.home, ".claude", "projects");
  for (const folder of await readdir(projects)) {
    const file = path.join(projects, folder, `${sessionId}.jsonl`);
    const found = await readFile(file, "utf8").then(
      () => true,
      () => false,
    );
    if (found) return file;
  }
  throw new Error(`no CLI transcript for session ${sessionId} under ${projects}`);
}

beforeAll(async () => {
  model = await startStandInModel();
  home = await makeDaemonHome({
    modelUrl: model.url,
    contacts: {
      contacts: [
        { name: "John Doe", tier: "favorite", handles: [JOHN] },
        { name: "Jane Roe", tier: "favorite", handles: [JANE] },
      ],
    },
  });
  await writeConfig(path.join(home.home, "transcripts-old"));
  env = home.env;
  daemon = await startDaemonProcess(env);
});

afterAll(async () => {
  if (daemon) await daemon.stop("SIGKILL");
  await model.close();
  await home.remove();
});

describe("the check after each resume", () => {
  it("resumes whole, from dispatch's copy, a session whose folder moved and whose CLI transcript is short or gone", async () => {
    await send(JOHN, "hello there");
    const johnBefore = await send(JOHN, "remember the word cedar");
    const janeBefore = await send(JANE, "remember the word plum");
    expect(await daemon!.stop("SIGTERM")).toBe(0);
    daemon = undefined;

    // John's CLI transcript loses everything from "cedar" on; Jane's is gone.
    const johnFile = await cliTranscriptOf(johnBefore.session_id);
    const lines = (await readFile(johnFile, "utf8")).split("\n");
    const cut = lines.findIndex((line) => line.includes('"type":"user"') && line.includes("cedar"));
    expect(cut).toBeGreaterThan(0);
    await writeFile(johnFile, lines.slice(0, cut).join("\n") + "\n");
    await rm(await cliTranscriptOf(janeBefore.session_id));
    await writeConfig(path.join(home.home, "transcripts-new"));

    daemon = await startDaemonProcess(env);
    const johnAfter = await send(JOHN, "what word did I ask you to remember?");
    const janeAfter = await send(JANE, "what word did I ask you to remember?");

    expect(johnAfter.reply).toContain("You asked me to remember cedar");
    expect(janeAfter.reply).toContain("You asked me to remember plum");
    for (const [chatId, before, after] of [
      [JOHN, johnBefore, johnAfter],
      [JANE, janeBefore, janeAfter],
    ] as const) {
      expect(after.session_id).toBe(before.session_id);
      const view = (await daemon.api("GET", `/v1/sessions/${encodeURIComponent(chatId)}`))
        .json as SessionView;
      expect(view.session_id).toBe(before.session_id);
      expect(view.previous_session_ids).toEqual([]);
    }
    expect(daemon.output()).not.toContain('"session-history-missing"');
  });

  it("leaves a session whose history came back whole as it was", async () => {
    const before = await send(JOHN, "remember the word birch");
    expect(await daemon!.stop("SIGTERM")).toBe(0);
    daemon = await startDaemonProcess(env);

    const after = await send(JOHN, "what word did I ask you to remember?");

    expect(after.reply).toContain("You asked me to remember birch");
    expect(after.session_id).toBe(before.session_id);
    expect(daemon.output()).not.toContain('"session-history-missing"');
  });
});
