import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { daemonEnv } from "../support/daemon-home.js";
import { makeTempHome, waitUntil } from "../support/real-manager.js";

/** Edits to contacts.json reach a running daemon (`dispatch start` as a child process). */
const JOHN = { name: "John Doe", tier: "favorite", handles: ["+1 (555) 123-4567"] };
const JANE = { name: "Jane Roe", tier: "family", handles: ["jane@example.com"] };

let model: StandInModel;
let home: { home: string; remove(): Promise<void> };
let contactsFile: string;
let daemon: DaemonProcess;

beforeAll(async () => {
  model = await startStandInModel();
  home = await makeTempHome();
  await mkdir(path.join(home.home, "dispatch"), { recursive: true });
  contactsFile = path.join(home.home, "dispatch", "contacts.json");
  await writeFile(contactsFile, JSON.stringify({ contacts: [JOHN] }));
  daemon = await startDaemonProcess(
    await daemonEnv(home.home, model.url, { DISPATCH_LOG_LEVEL: "info" }),
  );
});

afterAll(async () => {
  await daemon?.stop("SIGKILL");
  await model.close();
  await home.remove();
});

const sendFromJane = () =>
  daemon.api("POST", "/v1/messages", { chat_id: "jane@example.com", text: "hi", wait: true });

/** How many times the daemon has logged `message` so far. */
const countLogged = (message: string) =>
  daemon
    .output()
    .split("\n")
    .filter((line) => line.includes(`"msg":"${message}"`)).length;

describe("contacts.json edited while the daemon runs", () => {
  it("answers a contact added to the file, without a restart", async () => {
    const refused = await sendFromJane();
    expect(refused.status).toBe(403);
    expect((refused.json as { error: { code: string } }).error.code).toBe("unknown_sender");

    await writeFile(contactsFile, JSON.stringify({ contacts: [JOHN, JANE] }, null, 2));
    await waitUntil(() => countLogged("contacts-reload") === 1, 15_000, "contacts-reload");
    expect(daemon.output()).toMatch(/"contacts":2,"groups":0,"msg":"contacts-reload"/);

    const answered = await sendFromJane();
    expect(answered.status, JSON.stringify(answered.json)).toBe(200);
    expect((answered.json as { reply: string }).reply).toContain("[stand-in model]");
    const session = await daemon.api("GET", "/v1/sessions/jane%40example.com");
    expect(session.json).toMatchObject({ contact_name: "Jane Roe", tier: "family" });
  });

  it("refuses an invalid edit as a whole, logging why, and keeps answering by the old book", async () => {
    // Jane's removal is valid by itself; the bad tier beside it must keep all of it out.
    await writeFile(
      contactsFile,
      JSON.stringify({ contacts: [{ ...JOHN, tier: "bogus" }, { name: "No Handles" }] }),
    );
    await waitUntil(() => countLogged("contacts-reload-refuse") === 1, 15_000, "the refusal");
    const refusal = daemon
      .output()
      .split("\n")
      .find((line) => line.includes('"msg":"contacts-reload-refuse"'))!;
    expect(refusal).toContain('unknown tier \\"bogus\\"');
    expect(refusal).toContain("contacts[1].handles: missing");
    expect(countLogged("contacts-reload")).toBe(1);

    const stillAnswered = await sendFromJane();
    expect(stillAnswered.status, JSON.stringify(stillAnswered.json)).toBe(200);
  });
});
