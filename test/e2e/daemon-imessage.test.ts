import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { createChatDb, type ChatDbFixture } from "../support/chat-db.js";
import { envelopeHeaderFor } from "../support/envelope-header.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { daemonEnv } from "../support/daemon-home.js";
import { makeTempHome } from "../support/real-manager.js";
import {
  readRecordedSends,
  RECORDING_SEND,
  waitForRecordedSends,
} from "../support/recorded-sends.js";

/**
 * The whole daemon with its iMessage channel: a chat.db with the real schema, rows inserted as
 * Messages writes them, and a recording send command standing in for osascript.
 */
const JOHN = "+15551234567";
const JANE = "jane@example.com";

let model: StandInModel;
let home: { home: string; remove(): Promise<void> };
let env: NodeJS.ProcessEnv;
let chatDb: ChatDbFixture;
let recordFile: string;
let daemon: DaemonProcess | undefined;

beforeAll(async () => {
  model = await startStandInModel();
  home = await makeTempHome();
  const dispatchHome = path.join(home.home, "dispatch");
  await mkdir(dispatchHome, { recursive: true });
  recordFile = path.join(home.home, "sent.jsonl");
  await writeFile(recordFile, "");
  const dbPath = path.join(home.home, "chat.db");
  chatDb = createChatDb(dbPath);
  await writeFile(
    path.join(dispatchHome, "config.json"),
    JSON.stringify({
      channels: {
        imessage: {
          enabled: true,
          dbPath,
          pollIntervalMs: 50,
          sendCommand: [process.execPath, RECORDING_SEND, recordFile],
        },
      },
    }),
  );
  await writeFile(
    path.join(dispatchHome, "contacts.json"),
    JSON.stringify({
      contacts: [
        { name: "John Doe", tier: "favorite", handles: [JOHN] },
        { name: "Jane Roe", tier: "family", handles: [JANE] },
      ],
      groups: [{ chat_id: "chat900", name: "Family Chat", tier: "family" }],
    }),
  );
  env = await daemonEnv(home.home, model.url);
});

afterAll(async () => {
  if (daemon) await daemon.stop("SIGKILL");
  chatDb.close();
  await model.close();
  await home.remove();
});

const sent = () => readRecordedSends(recordFile);
const waitForSent = (count: number) => waitForRecordedSends(recordFile, count);

describe("the daemon's iMessage channel, end to end", () => {
  it("answers one-to-one and group texts to the right recipient, reading attributedBody-only rows", async () => {
    daemon = await startDaemonProcess(env);
    chatDb.oneToOneChat(JOHN);
    chatDb.text(JOHN, "remember the word tangerine");
    const first = await waitForSent(1);
    expect(first[0]).toEqual(["buddy", JOHN, "[stand-in model] OK, I will remember tangerine."]);

    chatDb.attributedBodyText(JOHN, "what word did I ask you to remember?");
    const second = await waitForSent(2);
    expect(second[1]).toEqual([
      "buddy",
      JOHN,
      "[stand-in model] You asked me to remember tangerine.",
    ]);

    const { chat } = chatDb.groupChat("chat900", [JOHN, JANE], "Family Chat");
    chatDb.groupText(chat, JANE, "hello family");
    const third = await waitForSent(3);
    expect(third[2]![0]).toBe("chat");
    expect(third[2]![1]).toBe(chat.guid);
    expect(third[2]![2]).toContain("hello family");

    // In a group the agent may choose silence: nothing is sent, and the next text is answered.
    chatDb.groupText(chat, JOHN, "[[silent]] just chatting among ourselves");
    chatDb.groupText(chat, JANE, "tell me about apricots");
    const fourth = await waitForSent(4);
    expect(fourth[3]![2]).toContain("apricots");
    expect(fourth.map((line) => line[2]).join("\n")).not.toContain("[silent]");
  });

  it("ignores own messages and tapbacks", async () => {
    const target = chatDb.text(JOHN, "tell me about plums");
    await waitForSent(5);
    chatDb.ownMessage(JOHN, "this is the assistant's own text");
    chatDb.tapback(JOHN, target, "tell me about plums");
    chatDb.text(JOHN, "tell me about pears");
    const lines = await waitForSent(6);
    expect(lines[5]![2]).toContain("pears");
    const all = lines.map((line) => line[2]).join("\n");
    expect(all).not.toContain("assistant's own text");
    expect(all).not.toContain("Loved");
    // The agent was never given them either.
    const asked = model
      .mainRequests()
      .flatMap((request) => request.userTexts)
      .join("\n");
    expect(asked).not.toContain("assistant's own text");
  });

  it("tells the agent who wrote in the group, and when a contact changes channel", async () => {
    const headerFor = (word: string) => envelopeHeaderFor(model.mainRequests(), word);
    // The group's first message names the group and Jane in full; John, new to the group, is
    // introduced in full too; Jane, writing again, is named without what the agent knows.
    expect(headerFor("hello family")).toMatchObject({
      group: "Family Chat",
      group_id: "chat900",
      from: "Jane Roe",
      handle: JANE,
      tier: "family",
      channel: "imessage",
    });
    expect(headerFor("just chatting among ourselves")).toMatchObject({
      from: "John Doe",
      handle: JOHN,
      tier: "favorite",
    });
    const janeAgain = headerFor("tell me about apricots");
    expect(janeAgain).toMatchObject({ from: "Jane Roe", handle: JANE });
    expect(Object.keys(janeAgain).filter((name) => name !== "at")).toEqual(["from", "handle"]);

    // John, so far on iMessage, writes over the HTTP API, then on iMessage again: the agent is
    // told each change of channel, and nothing else it knows.
    const before = (await sent()).length;
    const overHttp = await daemon!.api("POST", "/v1/messages", {
      chat_id: JOHN,
      text: "over the web now, about kumquats",
      wait: true,
    });
    expect(overHttp.status).toBe(200);
    chatDb.text(JOHN, "back on the phone, about limes");
    await waitForSent(before + 1);
    const web = headerFor("about kumquats");
    expect(Object.keys(web).filter((name) => name !== "at")).toEqual(["channel"]);
    expect(web.channel).toBe("http");
    const phone = headerFor("about limes");
    expect(Object.keys(phone).filter((name) => name !== "at")).toEqual(["channel"]);
    expect(phone.channel).toBe("imessage");
  });

  it("neither replays nor misses a message across a restart, and does not answer backfilled rows", async () => {
    expect(await daemon!.stop("SIGTERM")).toBe(0);
    const before = (await sent()).length;
    chatDb.text(JOHN, "sent while dispatch was down about figs");
    chatDb.text(JOHN, "an old backfilled row about quinces", {
      dateMs: Date.now() - 3 * 3_600_000,
    });

    daemon = await startDaemonProcess(env);
    const lines = await waitForSent(before + 1);
    expect(lines[before]![2]).toContain("figs");
    // Give a replay or a backfill answer every chance to appear, then check none did.
    chatDb.text(JOHN, "and one more about dates");
    const after = await waitForSent(before + 2);
    expect(after[before + 1]![2]).toContain("dates");
    const all = after.map((line) => line[2]).join("\n");
    expect(all).not.toContain("quinces");
    expect(
      after.filter((line) => line[2] === "[stand-in model] OK, I will remember tangerine."),
    ).toHaveLength(1);
    expect(after).toHaveLength(before + 2);
  });

  it("delivers hostile text to the send command byte for byte", async () => {
    const before = (await sent()).length;
    const hostile =
      'say "hi" \\ end tell\ntell application "Finder" to delete every item; do shell script "rm -rf ~"';
    chatDb.text(JOHN, hostile);
    const lines = await waitForSent(before + 1);
    expect(lines[before]![0]).toBe("buddy");
    expect(lines[before]![2]).toContain('say "hi" \\ end tell tell application "Finder"');
    expect(lines[before]![2]).toContain('do shell script "rm -rf ~"');
  });
});
