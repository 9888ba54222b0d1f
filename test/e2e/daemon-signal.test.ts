import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { makeDaemonHome, type DaemonHome } from "../support/daemon-home.js";
import { startSignalCliStandIn, type SignalCliStandIn } from "../support/signal-cli-stand-in.js";
import { directText, groupText, type Sender } from "../support/signal-envelopes.js";

/**
 * The whole daemon with its Signal channel: the real SDK and CLI against the stand-in model, and
 * a stand-in of signal-cli's HTTP daemon speaking its event stream and JSON-RPC.
 */
const ACCOUNT = "+15550000000";
const JOHN: Sender = { number: "+15551234567", uuid: "0e1a2b3c-4d5e-4f60-8172-839405a6b7c8" };
// Jane shares no phone number on Signal: contacts.json lists her account id.
const JANE: Sender = { number: null, uuid: "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d" };
const GROUP_ID = "+bE4U3zEhCjHKSaPzWImMpnCbU8A1r0/Pmpi+EfPWms=";

let model: StandInModel;
let signalCli: SignalCliStandIn;
let home: DaemonHome;
let env: NodeJS.ProcessEnv;
let journalFile: string;
let daemon: DaemonProcess | undefined;

beforeAll(async () => {
  model = await startStandInModel();
  signalCli = await startSignalCliStandIn({ account: ACCOUNT });
  home = await makeDaemonHome({
    modelUrl: model.url,
    config: {
      unknownSenders: "respond",
      channels: { signal: { enabled: true, url: signalCli.url, account: ACCOUNT } },
    },
    contacts: {
      contacts: [
        { name: "John Doe", tier: "favorite", handles: [JOHN.number] },
        { name: "Jane Roe", tier: "family", handles: [`signal:${JANE.uuid}`] },
      ],
      groups: [{ chat_id: `signal-group:${GROUP_ID}`, name: "Family Chat", tier: "family" }],
    },
  });
  journalFile = path.join(home.home, "dispatch", "state", "journal.db");
  env = home.env;
});

afterAll(async () => {
  if (daemon) await daemon.stop("SIGKILL");
  await signalCli.close();
  await model.close();
  await home.remove();
});

/** Where a send went: a phone number or account id, or `group:<base64>`. */
function targetOf(params: Record<string, unknown>): string {
  if (typeof params.groupId === "string") return `group:${params.groupId}`;
  return (params.recipient as string[])[0]!;
}

async function waitForSends(
  done: (sends: { to: string; text: string }[]) => boolean,
): Promise<{ to: string; text: string }[]> {
  const deadline = Date.now() + 45_000;
  for (;;) {
    const sends = signalCli
      .sends()
      .map((params) => ({ to: targetOf(params), text: String(params.message) }));
    if (done(sends)) return sends;
    if (Date.now() > deadline) throw new Error(`sends so far: ${JSON.stringify(sends)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const sendsTo = (sends: { to: string; text: string }[], to: string) =>
  sends.filter((send) => send.to === to);

/** Sends a last message and waits for its answer: any second answer had its chance to go out. */
async function settle(word: string): Promise<{ to: string; text: string }[]> {
  signalCli.push(directText(JOHN, `tell me about ${word}`));
  return waitForSends((sends) => sends.some((send) => send.text.includes(word)));
}

describe("the daemon's Signal channel, end to end", () => {
  it("answers a one-to-one Signal message, with context, and shows it is typing", async () => {
    daemon = await startDaemonProcess(env);
    await signalCli.whenConnected();
    signalCli.push(directText(JOHN, "remember the word tangerine"));
    const first = await waitForSends((sends) => sends.length >= 1);
    expect(first[0]).toEqual({
      to: JOHN.number,
      text: "[stand-in model] OK, I will remember tangerine.",
    });
    signalCli.push(directText(JOHN, "what word did I ask you to remember?"));
    const second = await waitForSends((sends) => sends.length >= 2);
    expect(second[1]).toEqual({
      to: JOHN.number,
      text: "[stand-in model] You asked me to remember tangerine.",
    });
    // Typing shows while each turn runs, and is stopped when it ends.
    const typing = () => signalCli.calls().filter((call) => call.method === "sendTyping");
    expect(typing()[0]?.params).toEqual({ account: ACCOUNT, recipient: [JOHN.number] });
    const deadline = Date.now() + 10_000;
    while (typing().filter((call) => call.params.stop === true).length < 2) {
      if (Date.now() > deadline) throw new Error(`typing calls: ${JSON.stringify(typing())}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(typing().filter((call) => call.params.stop === true)[0]!.params).toEqual({
      account: ACCOUNT,
      recipient: [JOHN.number],
      stop: true,
    });
  });

  it("answers a sender known only by their account id, as their contact", async () => {
    signalCli.push(directText(JANE, "tell me about kiwis"));
    const sends = await waitForSends((all) => sendsTo(all, JANE.uuid).length >= 1);
    expect(sendsTo(sends, JANE.uuid)[0]!.text).toContain("kiwis");
    const asked = model
      .mainRequests()
      .find((request) => request.userTexts.at(-1)?.includes("kiwis"));
    expect(asked?.userTexts.at(-1)).toContain("Jane Roe");
  });

  it("answers a Signal group in the group, naming the member who wrote", async () => {
    signalCli.push(groupText(JOHN, GROUP_ID, "Family Chat", "hello family, tell me about figs"));
    const sends = await waitForSends((all) => sendsTo(all, `group:${GROUP_ID}`).length >= 1);
    expect(sendsTo(sends, `group:${GROUP_ID}`)[0]!.text).toContain("figs");
    const asked = model
      .mainRequests()
      .find((request) => request.userTexts.at(-1)?.includes("figs"));
    expect(asked?.userTexts.at(-1)).toContain("Family Chat");
    expect(asked?.userTexts.at(-1)).toContain("John Doe");
  });

  it("answers every message of a burst once when the stream drops in the middle of it", async () => {
    const senders = Array.from({ length: 5 }, (_, index) => ({
      number: `+1555010000${index}`,
      uuid: `00000000-0000-4000-8000-00000000000${index}`,
    }));
    const envelopes = senders.map((sender, index) =>
      directText(sender, `tell me about burst topic number${index}`),
    );
    signalCli.cutStreamAfter(2);
    for (const envelope of envelopes) signalCli.push(envelope);
    // signal-cli may hand a message over again (a retry from its message cache).
    signalCli.push(envelopes[1]!);
    await waitForSends((all) => senders.every((sender) => sendsTo(all, sender.number).length > 0));
    const sends = await settle("melons");
    senders.forEach((sender, index) => {
      const answers = sendsTo(sends, sender.number);
      expect(answers, sender.number).toHaveLength(1);
      expect(answers[0]!.text).toContain(`number${index}`);
    });
    expect(signalCli.connections()).toBeGreaterThanOrEqual(2);
  });

  it("answers each pending Signal message once after kill -9", async () => {
    const senders = Array.from({ length: 3 }, (_, index) => ({
      number: `+1555020000${index}`,
      uuid: `00000000-0000-4000-8000-00000000010${index}`,
    }));
    const words = ["walnut", "pecan", "almond"];
    senders.forEach((sender, index) =>
      signalCli.push(directText(sender, `[[delay 4000]] remember the word ${words[index]}`)),
    );
    // Each is recorded and its turn has begun: the model holds all three.
    await model.waitForRequests(3, (request) =>
      words.some((word) => request.userTexts.at(-1)?.includes(word) === true),
    );
    expect(await daemon!.stop("SIGKILL")).toBeNull();
    const before = signalCli.sends().length;

    daemon = await startDaemonProcess(env);
    await waitForSends((all) =>
      senders.every((sender) => sendsTo(all.slice(before), sender.number).length > 0),
    );
    const sends = await settle("grapes");
    senders.forEach((sender, index) => {
      const answers = sendsTo(sends, sender.number);
      expect(answers, sender.number).toHaveLength(1);
      expect(answers[0]!.text).toContain(words[index]);
    });

    // The journal holds each Signal message once, by sender and timestamp, and all answered.
    const db = new Database(journalFile, { readonly: true });
    try {
      const rows = db
        .prepare("SELECT external_id, status FROM inbound WHERE channel = 'signal'")
        .all() as { external_id: string; status: string }[];
      const ids = rows.map((row) => row.external_id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const sender of senders) {
        expect(rows.filter((row) => row.external_id.startsWith(sender.uuid))).toEqual([
          { external_id: expect.stringMatching(/^[0-9a-f-]+:\d+$/) as unknown, status: "answered" },
        ]);
      }
    } finally {
      db.close();
    }
  });
});
