import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { createChatDb, type ChatDbFixture } from "../support/chat-db.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { envelopeHeaderFor } from "../support/envelope-header.js";
import { waitUntil } from "../support/real-manager.js";
import { makeDaemonHome } from "../support/daemon-home.js";
import {
  readRecordedSends,
  RECORDING_SEND,
  waitForRecordedSends,
} from "../support/recorded-sends.js";

/**
 * One session per person (issue 15), through the real daemon, SDK and stand-in model: a contact's
 * phone (iMessage, from a chat.db) and email (HTTP) share one memory, and each reply goes back on
 * the handle it was asked on; a handle added to contacts.json while it runs joins; with
 * `sessionScope: "chat"` they stay apart, and switching back to `"person"` merges them at start.
 */
const PHONE = "+15551234567";
const EMAIL = "john@example.com";
const WORK = "john@work.example.com";
const RECALL = "what word did I ask you to remember?";
const REMEMBERED = "[stand-in model] You asked me to remember mango.";
const NEVER = "[stand-in model] You never asked me to remember a word.";

let model: StandInModel;

beforeAll(async () => {
  model = await startStandInModel();
});

afterAll(async () => {
  await model.close();
});

interface Session {
  chat_id: string;
  session_name: string;
  session_id: string;
  channel: string | null;
  previous_session_ids: { session_id: string; reason: string; session_name?: string }[];
}

async function sessionsOf(daemon: DaemonProcess): Promise<Map<string, Session>> {
  const { json } = await daemon.api("GET", "/v1/sessions");
  return new Map((json as Session[]).map((session) => [session.chat_id, session]));
}

async function ask(daemon: DaemonProcess, chatId: string, text: string): Promise<string> {
  const response = await daemon.api("POST", "/v1/messages", { chat_id: chatId, text, wait: true });
  expect(response.status, JSON.stringify(response.json)).toBe(200);
  return (response.json as { reply: string }).reply;
}

async function homeWith(config: object, contacts: object) {
  const home = await makeDaemonHome({
    modelUrl: model.url,
    config,
    contacts,
    env: { DISPATCH_LOG_LEVEL: "info" },
  });
  const dispatchHome = path.join(home.home, "dispatch");
  const configFile = path.join(dispatchHome, "config.json");
  const contactsFile = path.join(dispatchHome, "contacts.json");
  return { home, env: home.env, configFile, contactsFile };
}

describe('one session per person (sessionScope "person", the default)', () => {
  let setup: Awaited<ReturnType<typeof homeWith>>;
  let chatDb: ChatDbFixture;
  let recordFile: string;
  let daemon: DaemonProcess | undefined;
  const john = { name: "John Doe", tier: "favorite", handles: [PHONE, EMAIL] };

  beforeAll(async () => {
    const config = { unknownSenders: "respond" } as Record<string, unknown>;
    setup = await homeWith(config, { contacts: [john] });
    recordFile = path.join(setup.home.home, "sent.jsonl");
    await writeFile(recordFile, "");
    const dbPath = path.join(setup.home.home, "chat.db");
    chatDb = createChatDb(dbPath);
    config.channels = {
      imessage: {
        enabled: true,
        dbPath,
        pollIntervalMs: 50,
        sendCommand: [process.execPath, RECORDING_SEND, recordFile],
      },
    };
    await writeFile(setup.configFile, JSON.stringify(config));
    daemon = await startDaemonProcess(setup.env);
  });

  afterAll(async () => {
    if (daemon) await daemon.stop("SIGKILL");
    chatDb.close();
    await setup.home.remove();
  });

  const sent = () => readRecordedSends(recordFile);
  const waitForSent = (count: number) => waitForRecordedSends(recordFile, count);

  it("shares one memory between a person's phone and email, answering each on its own handle", async () => {
    chatDb.oneToOneChat(PHONE);
    chatDb.text(PHONE, "remember the word mango");
    const first = await waitForSent(1);
    expect(first[0]).toEqual(["buddy", PHONE, "[stand-in model] OK, I will remember mango."]);

    // Asked on the email handle, over HTTP: the reply comes back there, knowing the phone's word.
    expect(await ask(daemon!, EMAIL, RECALL)).toBe(REMEMBERED);
    // Nothing of it went out on iMessage.
    expect(await sent()).toHaveLength(1);

    // And back on the phone: the answer goes to the phone, by iMessage.
    chatDb.text(PHONE, RECALL);
    const third = await waitForSent(2);
    expect(third[1]).toEqual(["buddy", PHONE, REMEMBERED]);

    // The agent was told which handle and channel each message came in on.
    expect(envelopeHeaderFor(model.mainRequests(), "mango")).toMatchObject({
      handle: PHONE,
      channel: "imessage",
    });
    // One entry per chat id, both pointing at one session.
    const sessions = await sessionsOf(daemon!);
    const phone = sessions.get(PHONE)!;
    const email = sessions.get(EMAIL)!;
    expect(email.session_name).toBe(phone.session_name);
    expect(email.session_id).toBe(phone.session_id);
    expect(phone.channel).toBe("imessage");
    expect(email.channel).toBe("http");
  });

  it("tells the agent when the handle and channel change", () => {
    const asked = model
      .mainRequests()
      .flatMap((request) => request.userTexts)
      .join("\n");
    expect(asked).toMatch(/handle="john@example\.com"[^>]*channel="http"/);
  });

  it("joins a handle added to contacts.json while it runs, from its next message", async () => {
    // A stranger first (unknownSenders "respond"): its own session, which never heard the word.
    expect(await ask(daemon!, WORK, RECALL)).toBe(NEVER);
    const own = (await sessionsOf(daemon!)).get(WORK)!;

    await writeFile(
      setup.contactsFile,
      JSON.stringify({ contacts: [{ ...john, handles: [...john.handles, WORK] }] }),
    );
    await waitUntil(
      () => daemon!.output().includes('"msg":"contacts-reload"'),
      15_000,
      "contacts-reload",
    );

    expect(await ask(daemon!, WORK, RECALL)).toBe(REMEMBERED);
    const sessions = await sessionsOf(daemon!);
    const joined = sessions.get(WORK)!;
    expect(joined.session_name).toBe(sessions.get(PHONE)!.session_name);
    expect(joined.session_id).toBe(sessions.get(PHONE)!.session_id);
    // Its own conversation stays findable.
    expect(joined.previous_session_ids).toContainEqual(
      expect.objectContaining({
        session_id: own.session_id,
        reason: "joined-person",
        session_name: own.session_name,
      }),
    );
  });

  it("acts on the person's session from any handle: stop, then forget", async () => {
    const stop = await daemon!.api("DELETE", `/v1/sessions/${encodeURIComponent(EMAIL)}`);
    expect(stop.status).toBe(200);
    const { json } = await daemon!.api("GET", `/v1/sessions/${encodeURIComponent(PHONE)}`);
    expect((json as { state: string }).state).toBe("stopped");

    const forget = await daemon!.api(
      "DELETE",
      `/v1/sessions/${encodeURIComponent(EMAIL)}?forget=true`,
    );
    expect(forget.status, JSON.stringify(forget.json)).toBe(200);
    const sessions = await sessionsOf(daemon!);
    expect([...sessions.keys()]).toEqual([]);
    expect(await ask(daemon!, PHONE, RECALL)).toBe(NEVER);
  });
});

describe('sessionScope "chat", then back to "person"', () => {
  let setup: Awaited<ReturnType<typeof homeWith>>;
  let daemon: DaemonProcess | undefined;

  beforeAll(async () => {
    setup = await homeWith(
      { sessionScope: "chat" },
      { contacts: [{ name: "John Doe", tier: "favorite", handles: [PHONE, EMAIL] }] },
    );
  });

  afterAll(async () => {
    if (daemon) await daemon.stop("SIGKILL");
    await setup.home.remove();
  });

  it('keeps a person\'s handles apart with sessionScope "chat"', async () => {
    daemon = await startDaemonProcess(setup.env);
    expect(await ask(daemon, EMAIL, RECALL)).toBe(NEVER);
    expect(await ask(daemon, PHONE, "remember the word mango")).toBe(
      "[stand-in model] OK, I will remember mango.",
    );
    expect(await ask(daemon, EMAIL, RECALL)).toBe(NEVER);
    // The phone writes last.
    expect(await ask(daemon, PHONE, RECALL)).toBe(REMEMBERED);
    const sessions = await sessionsOf(daemon);
    expect(sessions.get(EMAIL)!.session_name).not.toBe(sessions.get(PHONE)!.session_name);
  });

  it('merges them at the next start under "person": the most recently active session is the person\'s', async () => {
    const before = await sessionsOf(daemon!);
    await daemon!.stop("SIGTERM");
    await writeFile(setup.configFile, JSON.stringify({ sessionScope: "person" }));
    daemon = await startDaemonProcess(setup.env);

    // The phone wrote last: its session (which heard "mango") is the person's now.
    expect(await ask(daemon, EMAIL, RECALL)).toBe(REMEMBERED);
    const sessions = await sessionsOf(daemon);
    const email = sessions.get(EMAIL)!;
    expect(email.session_name).toBe(before.get(PHONE)!.session_name);
    expect(email.session_id).toBe(sessions.get(PHONE)!.session_id);
    // The email's own conversation is not lost: recorded with its folder.
    expect(email.previous_session_ids).toContainEqual(
      expect.objectContaining({
        session_id: before.get(EMAIL)!.session_id,
        reason: "joined-person",
        session_name: before.get(EMAIL)!.session_name,
      }),
    );
    expect(daemon.output()).toContain('"msg":"session-join"');
  });
});
