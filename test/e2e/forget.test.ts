/**
 * Forget means forget, through the daemon as a child process, the real SDK and its CLI.
 * Regression (issue 12): a forget dropped only the registry entry. The session's folder and the
 * CLI's data for it (its auto memory, which the CLI puts into every session started in that
 * folder) stayed, and the next chat whose name mapped to the same session name, or the same
 * contact writing again, got them: a group called "Alice Admin" got Alice's files.
 */
import { spawn } from "node:child_process";
import { lstat, mkdir, readFile, readdir, realpath, writeFile } from "node:fs/promises";
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FORGET_RECORD } from "../../src/daemon/session-archive.js";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { claudeProjectKey } from "../../src/agent/claude-cli-layout.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { makeDaemonHome, type DaemonHome } from "../support/daemon-home.js";

const JOHN = "+15551230001";
const ALICE = "+15551230002";
const ALICE_GROUP = "alicegroup123";
const JANE = "+15551230003";
const MARK = "+15551230004";
const DANA = "+15551230005";
const KIM = "+15551230006";
const RUNNER = path.join(import.meta.dirname, "..", "support", "forget-runner.ts");

let model: StandInModel;
let home: DaemonHome;
/** The home with its links resolved: the path the CLI sees its working folders under. */
let realHome: string;
let env: NodeJS.ProcessEnv;
let daemon: DaemonProcess | undefined;

interface Reply {
  session_name: string;
  session_id: string;
  reply: string;
}

beforeAll(async () => {
  model = await startStandInModel();
  home = await makeDaemonHome({
    modelUrl: model.url,
    contacts: {
      contacts: [
        { name: "John Doe", tier: "admin", handles: [JOHN] },
        { name: "Alice Admin", tier: "admin", handles: [ALICE] },
        { name: "Jane Roe", tier: "favorite", handles: [JANE] },
        { name: "Mark Moe", tier: "favorite", handles: [MARK] },
        { name: "Dana Doe", tier: "favorite", handles: [DANA] },
        { name: "Kim Lee", tier: "favorite", handles: [KIM] },
      ],
      groups: [{ chat_id: ALICE_GROUP, name: "Alice Admin", tier: "admin" }],
    },
  });
  realHome = await realpath(home.home);
  env = home.env;
  daemon = await startDaemonProcess(env);
});

afterAll(async () => {
  if (daemon) await daemon.stop("SIGKILL");
  await model.close();
  await home.remove();
});

async function send(chatId: string, text: string, sender?: string): Promise<Reply> {
  const response = await daemon!.api("POST", "/v1/messages", {
    chat_id: chatId,
    text,
    wait: true,
    ...(sender ? { sender } : {}),
  });
  expect(response.status, JSON.stringify(response.json)).toBe(200);
  return response.json as Reply;
}

/** Forgets the chat through the HTTP API; returns where its files went. */
async function forget(chatId: string): Promise<string> {
  const response = await daemon!.api(
    "DELETE",
    `/v1/sessions/${encodeURIComponent(chatId)}?forget=true`,
  );
  expect(response.status, JSON.stringify(response.json)).toBe(200);
  return (response.json as { archive: string }).archive;
}

/** The chat's working folder as the CLI sees it, and the CLI's memory file for that folder. */
function placesOf(sessionName: string) {
  const folder = path.join(realHome, "transcripts", sessionName);
  const key = claudeProjectKey(folder);
  const memory = path.join(realHome, ".claude", "projects", key, "memory", "MEMORY.md");
  return { folder, key, memory };
}

/** Tells the chat's agent to save `text` as the CLI's memory and in a file of its folder. */
async function saveMemoryAndNote(
  chatId: string,
  sessionName: string,
  text: string,
  sender?: string,
) {
  const { folder, memory } = placesOf(sessionName);
  // dispatch turns the CLI's auto memory off (test/e2e/tier-limits.test.ts), so no agent writes
  // there now; a memory an earlier version's agent wrote is put there by hand, and must still go.
  await mkdir(path.dirname(memory), { recursive: true });
  await writeFile(memory, `- ${text}\n`);
  const noted = await send(
    chatId,
    `[[tool Write ${JSON.stringify({ file_path: path.join(folder, "notes.txt"), content: text })}]]`,
    sender,
  );
  expect(noted.reply).toContain("Tool Write returned: File created");
}

/** Everything the model was sent from `from` on, as one text. */
function requestsSince(from: number): string {
  return JSON.stringify(model.requests.slice(from).map((request) => request.body));
}

/** Entries dispatch's transcript copy holds under a CLI project key (read beside the daemon). */
function copiedEntriesOf(projectKey: string): number {
  const db = new BetterSqlite3(path.join(home.home, "dispatch", "state", "journal.db"), {
    readonly: true,
  });
  try {
    return db
      .prepare<[string], number>("SELECT count(*) FROM transcript_entries WHERE project_key = ?")
      .pluck()
      .get(projectKey)!;
  } finally {
    db.close();
  }
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}

async function archiveOf(sessionName: string): Promise<string> {
  const archiveDir = path.join(home.home, "dispatch", "state", "forgotten");
  const folders = (await readdir(archiveDir)).filter((name) =>
    new RegExp(`^\\d{4}-\\d{2}-\\d{2}-${sessionName}$`).test(name),
  );
  expect(folders).toHaveLength(1);
  return path.join(archiveDir, folders[0]!);
}

describe("forget means forget", () => {
  it("a forgotten contact who writes again starts afresh: its new session never sees the word, and its files are archived", async () => {
    const remembered = await send(JOHN, "remember the word walnut");
    expect(remembered.reply).toContain("I will remember walnut");
    expect(remembered.session_name).toBe("john-doe");
    await saveMemoryAndNote(JOHN, "john-doe", "The contact's word is walnut");
    const old = placesOf("john-doe");

    const archive = await forget(JOHN);
    const from = model.requests.length;
    const again = await send(JOHN, "what word did I ask you to remember?");

    expect(again.reply).toContain("You never asked me to remember a word");
    expect(requestsSince(from)).not.toContain("walnut"); // not from the CLI's memory either
    expect(again.session_name).toBe("john-doe-2");
    expect(again.session_id).not.toBe(remembered.session_id);
    expect(await exists(old.folder)).toBe(false);
    expect(await exists(path.dirname(path.dirname(old.memory)))).toBe(false);

    const archived = await archiveOf("john-doe");
    expect(archive).toBe(archived);
    expect(await readFile(path.join(archived, "folder", "notes.txt"), "utf8")).toBe(
      "The contact's word is walnut",
    );
    expect(
      await readFile(
        path.join(archived, "claude-projects", old.key, "memory", "MEMORY.md"),
        "utf8",
      ),
    ).toContain("walnut");
    const copy = path.join(archived, "transcript-copy", old.key, `${remembered.session_id}.jsonl`);
    expect(await readFile(copy, "utf8")).toContain("remember the word walnut");
    const record = JSON.parse(await readFile(path.join(archived, FORGET_RECORD), "utf8")) as {
      chat_id: string;
      done: boolean;
    };
    expect(record).toMatchObject({ chat_id: JOHN, done: true });
    // Nothing of the old project is left in dispatch's own copy, not even written after the stop.
    expect(copiedEntriesOf(old.key)).toBe(0);
  });

  it("a group named like a forgotten contact gets a folder of its own, with none of the contact's files", async () => {
    const alice = await send(ALICE, "hello");
    expect(alice.session_name).toBe("alice-admin");
    await saveMemoryAndNote(ALICE, "alice-admin", "ALICE-PRIVATE-NOTE");
    await forget(ALICE);

    const from = model.requests.length;
    const listed = await send(ALICE_GROUP, '[[tool Glob {"pattern":"**/*"}]]', ALICE);

    expect(listed.reply).toContain("Tool Glob returned");
    expect(listed.reply).not.toContain("notes.txt");
    expect(requestsSince(from)).not.toContain("ALICE-PRIVATE-NOTE");
    expect(listed.session_name).not.toBe("alice-admin");
    expect(await exists(path.join(placesOf(listed.session_name).folder, "notes.txt"))).toBe(false);
    expect(
      await readFile(path.join(await archiveOf("alice-admin"), "folder", "notes.txt"), "utf8"),
    ).toBe("ALICE-PRIVATE-NOTE");
  });

  it("a folder left on disk by hand is not handed to a new chat of that name", async () => {
    const left = path.join(home.home, "transcripts", "jane-roe");
    await mkdir(left, { recursive: true });
    await writeFile(path.join(left, "diary.txt"), "JANE-HAND-PLACED");

    const listed = await send(JANE, '[[tool Glob {"pattern":"**/*"}]]');

    expect(listed.reply).toContain("Tool Glob returned");
    expect(listed.reply).not.toContain("diary.txt");
    expect(listed.session_name).toBe("jane-roe-2");
    expect(await readFile(path.join(left, "diary.txt"), "utf8")).toBe("JANE-HAND-PLACED");
  });

  it("nor is a name whose folder is gone but whose CLI data, with its memory, is still there", async () => {
    const { memory } = placesOf("mark-moe");
    await mkdir(path.dirname(memory), { recursive: true });
    await writeFile(memory, "- The word is MARK-LEFTOVER-MEMORY\n");

    const from = model.requests.length;
    const reply = await send(MARK, "hello");

    expect(requestsSince(from)).not.toContain("MARK-LEFTOVER-MEMORY");
    expect(reply.session_name).toBe("mark-moe-2");
  });

  // Regression (issue 12): a message not yet answered when its chat was forgotten stayed open in
  // the journal, and the next start replayed it into the chat's new conversation.
  it("never replays into the new conversation a message its forgotten chat left unanswered", async () => {
    await send(KIM, "hello");
    const accepted = await daemon!.api("POST", "/v1/messages", {
      chat_id: KIM,
      text: "[[delay 30000]] the secret word is QUARTZ-LEFT-UNANSWERED",
    });
    expect(accepted.status, JSON.stringify(accepted.json)).toBe(202);
    await forget(KIM);
    expect(await daemon!.stop("SIGTERM")).toBe(0);
    const from = model.requests.length;
    daemon = await startDaemonProcess(env);

    const reply = await send(KIM, "hello again");

    expect(reply.session_name).toBe("kim-lee-2");
    expect(requestsSince(from)).not.toContain("QUARTZ-LEFT-UNANSWERED");
    const db = new BetterSqlite3(path.join(home.home, "dispatch", "state", "journal.db"), {
      readonly: true,
    });
    try {
      const row = db
        .prepare<[string], { status: string; error_code: string | null }>(
          "SELECT status, error_code FROM inbound WHERE text LIKE ?",
        )
        .get("%QUARTZ-LEFT-UNANSWERED%");
      expect(row).toEqual({ status: "rejected", error_code: "forgotten" });
    } finally {
      db.close();
    }
  });

  it("finishes at start a forget that a kill -9 cut short", async () => {
    const dana = await send(DANA, "remember the word quince");
    expect(dana.session_name).toBe("dana-doe");
    expect(await daemon!.stop("SIGTERM")).toBe(0);
    daemon = undefined;

    // The forget runs as the daemon runs it, and is killed as its first move begins.
    await forgetKilledWhileMoving(DANA);
    expect(await exists(placesOf("dana-doe").folder)).toBe(true);

    daemon = await startDaemonProcess(env);
    const archived = await archiveOf("dana-doe");
    const record = JSON.parse(await readFile(path.join(archived, FORGET_RECORD), "utf8")) as {
      done: boolean;
    };
    expect(record.done).toBe(true);
    expect(await exists(placesOf("dana-doe").folder)).toBe(false);
    expect(await exists(path.join(archived, "folder"))).toBe(true);
    const again = await send(DANA, "what word did I ask you to remember?");
    expect(again.reply).toContain("You never asked me to remember a word");
    expect(again.session_name).toBe("dana-doe-2");
  });
});

/** Runs `test/support/forget-runner.ts --hang` on the home and kills it with SIGKILL mid-move. */
function forgetKilledWhileMoving(chatId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", RUNNER, home.home, "--hang", chatId],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      if (stdout.includes("moving\n")) child.kill("SIGKILL");
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (_code, signal) => {
      if (signal === "SIGKILL" && stdout.includes("moving\n")) resolve();
      else reject(new Error(`the forget was not killed mid-move (${signal}): ${stdout}${stderr}`));
    });
  });
}
