import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { makeDaemonHome, type DaemonHome } from "../support/daemon-home.js";

/**
 * Nothing lost: the journal replays what a crash interrupted, answers a repeated delivery once,
 * and the transcript mirror brings a session's context back when ~/.claude is gone.
 */
const JOHN = "+15551234567";

let model: StandInModel;
let home: DaemonHome;
let env: NodeJS.ProcessEnv;
let daemon: DaemonProcess | undefined;

beforeAll(async () => {
  model = await startStandInModel();
  home = await makeDaemonHome({
    modelUrl: model.url,
    contacts: { contacts: [{ name: "John Doe", tier: "favorite", handles: [JOHN] }] },
  });
  env = home.env;
  daemon = await startDaemonProcess(env);
});

afterAll(async () => {
  if (daemon) await daemon.stop("SIGKILL");
  await model.close();
  await home.remove();
});

function requestsMentioning(word: string): number {
  return model.mainRequests().filter((request) => request.userTexts.at(-1)?.includes(word)).length;
}

describe("nothing lost", () => {
  it("answers a repeated delivery of the same message id once, with the same reply", async () => {
    const body = {
      chat_id: JOHN,
      text: "tell me about saffron",
      message_id: "client-1",
      wait: true,
    };
    const first = await daemon!.api("POST", "/v1/messages", body);
    const second = await daemon!.api("POST", "/v1/messages", body);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.json).toEqual(first.json);
    expect((first.json as { reply: string }).reply).toContain("saffron");
    expect(requestsMentioning("saffron")).toBe(1);
  });

  it("replays a message the daemon took and was killed before answering", async () => {
    const accepted = await daemon!.api("POST", "/v1/messages", {
      chat_id: JOHN,
      text: "[[delay 4000]] remember the word walnut",
      message_id: "client-2",
    });
    expect(accepted.status).toBe(202);
    await model.waitForRequests(
      1,
      (request) => request.userTexts.at(-1)?.includes("walnut") === true,
    );
    expect(await daemon!.stop("SIGKILL")).toBeNull();

    daemon = await startDaemonProcess(env);
    // The same message id again: it joins the replayed message instead of a second answer.
    const answered = await daemon.api("POST", "/v1/messages", {
      chat_id: JOHN,
      text: "[[delay 4000]] remember the word walnut",
      message_id: "client-2",
      wait: true,
    });
    expect(answered.status).toBe(200);
    expect((answered.json as { reply: string }).reply).toContain("I will remember walnut");

    const recall = await daemon.api("POST", "/v1/messages", {
      chat_id: JOHN,
      text: "what word did I ask you to remember?",
      wait: true,
    });
    expect((recall.json as { reply: string }).reply).toContain("You asked me to remember walnut");
  });

  it("resumes with its context from dispatch's own copy when ~/.claude was wiped", async () => {
    const remember = await daemon!.api("POST", "/v1/messages", {
      chat_id: JOHN,
      text: "remember the word cedar",
      wait: true,
    });
    const sessionId = (remember.json as { session_id: string }).session_id;
    expect(await daemon!.stop("SIGTERM")).toBe(0);
    await rm(path.join(home.home, ".claude"), { recursive: true, force: true });

    daemon = await startDaemonProcess(env);
    const recall = await daemon.api("POST", "/v1/messages", {
      chat_id: JOHN,
      text: "what word did I ask you to remember?",
      wait: true,
    });
    expect(recall.status).toBe(200);
    expect((recall.json as { reply: string }).reply).toContain("You asked me to remember cedar");
    expect((recall.json as { session_id: string }).session_id).toBe(sessionId);
  });

  it("starts a fresh session with a handoff when the conversation overflows the context window", async () => {
    const chat = "+15559876543";
    await writeFile(
      path.join(home.home, "dispatch", "contacts.json"),
      JSON.stringify({
        contacts: [
          { name: "John Doe", tier: "favorite", handles: [JOHN] },
          { name: "Jane Roe", tier: "favorite", handles: [chat] },
        ],
      }),
    );
    expect(await daemon!.stop("SIGTERM")).toBe(0);
    daemon = await startDaemonProcess(env);
    const send = (text: string) =>
      daemon!.api("POST", "/v1/messages", { chat_id: chat, text, wait: true });

    const first = await send("remember the word plum");
    const oldSessionId = (first.json as { session_id: string }).session_id;
    const overflow = await send("[[prompt-too-long]] here is a huge paste");
    expect(overflow.status).toBe(502);
    expect(overflow.json).toMatchObject({ error: { code: "agent_error" } });

    const recall = await send("what word did I ask you to remember?");
    expect(recall.status).toBe(200);
    expect((recall.json as { reply: string }).reply).toContain("You asked me to remember plum");
    const session = (await daemon.api("GET", `/v1/sessions/${encodeURIComponent(chat)}`)).json as {
      session_id: string;
      previous_session_ids: { session_id: string; reason: string }[];
    };
    expect(session.session_id).not.toBe(oldSessionId);
    expect(session.previous_session_ids).toContainEqual(
      expect.objectContaining({ session_id: oldSessionId, reason: "context overflow" }),
    );
  });
});
