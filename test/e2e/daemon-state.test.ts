import { readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import {
  runDaemonExpectingRefusal,
  startDaemonProcess,
  type DaemonProcess,
} from "../support/daemon-process.js";
import BetterSqlite3 from "better-sqlite3";
import { makeDaemonHome, type DaemonHome } from "../support/daemon-home.js";

/**
 * Damaged state files through the real daemon process: a corrupt or truncated journal stops the
 * start with what to do, and the file is left exactly as it was. `sessions.json` is read only by
 * the first start with registry rows (an upgrade): then a corrupt one with no last good copy stops
 * the start the same way, and one with a last good copy is set aside and the chat carries on in
 * its own session. After that import, a corrupt `sessions.json` is only a damaged export: the
 * daemon starts from its rows and writes the file again.
 */
const JOHN = "+15551234567";

let model: StandInModel;
let home: DaemonHome;
let env: NodeJS.ProcessEnv;
let stateDir: string;
let journalFile: string;
let registryFile: string;
let sessionId: string;
let daemon: DaemonProcess | undefined;

/** The state files as a good run left them, put back before each case. */
const saved = new Map<string, Buffer>();

async function restoreState(): Promise<void> {
  for (const suffix of ["-wal", "-shm"]) await rm(`${journalFile}${suffix}`, { force: true });
  for (const [file, bytes] of saved) await writeFile(file, bytes);
}

/** The journal as a dispatch from before registry rows left it: no rows, no import done. */
function forgetRegistryRows(): void {
  const db = new BetterSqlite3(journalFile);
  try {
    db.exec("DELETE FROM registry; DELETE FROM registry_import;");
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  model = await startStandInModel();
  home = await makeDaemonHome({
    modelUrl: model.url,
    contacts: { contacts: [{ name: "John Doe", tier: "favorite", handles: [JOHN] }] },
  });
  env = home.env;
  stateDir = path.join(home.home, "dispatch", "state");
  journalFile = path.join(stateDir, "journal.db");
  registryFile = path.join(stateDir, "sessions.json");

  daemon = await startDaemonProcess(env);
  const first = await daemon.api("POST", "/v1/messages", {
    chat_id: JOHN,
    text: "remember the word cedar",
    wait: true,
  });
  sessionId = (first.json as { session_id: string }).session_id;
  expect(await daemon.stop("SIGTERM")).toBe(0);
  daemon = undefined;
  for (const file of [journalFile, registryFile]) {
    saved.set(file, await readFile(file));
  }
});

afterAll(async () => {
  if (daemon) await daemon.stop("SIGKILL");
  await model.close();
  await home.remove();
});

describe("a damaged journal", () => {
  it("refuses to start on a truncated journal, says what to do, and leaves the file as it was", async () => {
    await restoreState();
    await truncate(journalFile, Math.floor((await stat(journalFile)).size / 2));
    const before = await readFile(journalFile);

    const { code, output } = await runDaemonExpectingRefusal(env);

    expect(code).toBe(1);
    expect(output).toContain(`The journal ${journalFile} is damaged`);
    expect(output).toMatch(/move \S*journal\.db aside/);
    expect(output).toMatch(/restore a backup/i);
    expect((await readFile(journalFile)).equals(before)).toBe(true);
  });

  it("refuses to start on a file that is not a database at all, and leaves it as it was", async () => {
    await restoreState();
    const garbage = Buffer.from("not a database, only bytes ".repeat(400));
    await writeFile(journalFile, garbage);

    const { code, output } = await runDaemonExpectingRefusal(env);

    expect(code).toBe(1);
    expect(output).toContain(`The journal ${journalFile} is damaged`);
    expect((await readFile(journalFile)).equals(garbage)).toBe(true);
  });
});

describe("a damaged sessions.json", () => {
  it("after the import is only a damaged export: the daemon starts from its rows and writes it again", async () => {
    await restoreState();
    await writeFile(registryFile, "{ truncated");

    daemon = await startDaemonProcess(env);
    const recall = await daemon.api("POST", "/v1/messages", {
      chat_id: JOHN,
      text: "what word did I ask you to remember?",
      wait: true,
    });
    expect(recall.json).toMatchObject({ session_id: sessionId });
    expect(await daemon.stop("SIGTERM")).toBe(0);
    daemon = undefined;
    const exported = JSON.parse(await readFile(registryFile, "utf8")) as Record<
      string,
      { session_id: string }
    >;
    expect(exported[JOHN]?.session_id).toBe(sessionId);
  });

  it("refuses an upgrade's import when there is no last good copy, and leaves the file as it was", async () => {
    await restoreState();
    forgetRegistryRows();
    await rm(`${registryFile}.last-good`, { force: true });
    const broken = '{ "+15551234567": { "session_name": "john-doe", ';
    await writeFile(registryFile, broken);

    const { code, output } = await runDaemonExpectingRefusal(env);

    expect(code).toBe(1);
    expect(output).toContain(`The session registry ${registryFile} cannot be loaded`);
    expect(output).toContain("will not start with an empty registry");
    expect(output).toMatch(/Restore \S*sessions\.json\.last-good/);
    expect(await readFile(registryFile, "utf8")).toBe(broken);
    await expect(stat(`${registryFile}.last-good`)).rejects.toThrow(/ENOENT/);
  });

  it("sets an upgrade's corrupt file aside and imports the last good copy, in the same session", async () => {
    await restoreState();
    forgetRegistryRows();
    await writeFile(`${registryFile}.last-good`, saved.get(registryFile)!);
    const broken = "{ truncated";
    await writeFile(registryFile, broken);

    daemon = await startDaemonProcess(env);
    const recall = await daemon.api("POST", "/v1/messages", {
      chat_id: JOHN,
      text: "what word did I ask you to remember?",
      wait: true,
    });

    expect(recall.status).toBe(200);
    expect(recall.json).toMatchObject({ session_id: sessionId });
    expect((recall.json as { reply: string }).reply).toContain("You asked me to remember cedar");
    const keptAside = (await readdir(stateDir)).filter(
      (name) => name.startsWith("sessions.json") && name.includes("corrupt"),
    );
    expect(keptAside).toHaveLength(1);
    expect(await readFile(path.join(stateDir, keptAside[0]!), "utf8")).toBe(broken);
  });
});
