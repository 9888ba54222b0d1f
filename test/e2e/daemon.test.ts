import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import {
  freePort,
  runCli,
  startDaemonProcess,
  type DaemonProcess,
} from "../support/daemon-process.js";
import { makeDaemonHome, type DaemonHome } from "../support/daemon-home.js";
import { readRegistryRows } from "../support/home-registry.js";
import { isProcessAlive, makeTempHome, waitUntil } from "../support/real-manager.js";

/**
 * The whole daemon as a user runs it: `dispatch start` as a child process with HOME in a temp
 * folder, spoken to only over HTTP and through the CLI, against the stand-in model.
 */
const JOHN = "+15551234567";
const JANE = "+15559876543";
const GROUP = "chat123456789";

let model: StandInModel;
let home: DaemonHome;
let env: NodeJS.ProcessEnv;
let daemon: DaemonProcess | undefined;

interface Reply {
  chat_id: string;
  session_name: string;
  session_id: string;
  reply: string | null;
}

beforeAll(async () => {
  model = await startStandInModel();
  home = await makeDaemonHome({
    modelUrl: model.url,
    contacts: {
      contacts: [
        { name: "John Doe", tier: "favorite", handles: ["+1 (555) 123-4567", "john@example.com"] },
        { name: "Jane Roe", tier: "family", handles: [JANE] },
      ],
      groups: [{ chat_id: GROUP, name: "Family Chat", tier: "family" }],
    },
    env: {
      DISPATCH_LOG_LEVEL: "debug",
    },
  });
  env = home.env;
});

afterAll(async () => {
  if (daemon) await daemon.stop("SIGKILL");
  await model.close();
  await home.remove();
});

async function send(
  chatId: string,
  text: string,
  extra: Record<string, unknown> = {},
): Promise<Reply> {
  const response = await daemon!.api("POST", "/v1/messages", {
    chat_id: chatId,
    text,
    wait: true,
    ...extra,
  });
  expect(response.status, JSON.stringify(response.json)).toBe(200);
  return response.json as Reply;
}

/** The session id of each registered chat, as the registry rows hold it now. */
function sessionIds(): Record<string, string | null> {
  const registry = readRegistryRows(home.home);
  return Object.fromEntries(
    Object.entries(registry).map(([chatId, entry]) => [chatId, entry.session_id]),
  );
}

describe("the dispatch daemon, end to end", () => {
  it("answers contacts, keeps their contexts apart, and gives a group its own session", async () => {
    daemon = await startDaemonProcess(env);

    const john = await send("+1 555 123 4567", "remember the word cinnamon");
    expect(john.reply).toContain("I will remember cinnamon");
    expect(john.chat_id).toBe(JOHN);
    expect(john.session_name).toBe("john-doe");

    const janeRecall = await send(JANE, "what word did I ask you to remember?");
    expect(janeRecall.reply).toContain("You never asked me to remember a word");
    await send(JANE, "remember the word basil");

    const group = await send(GROUP, "remember the word paprika", { sender: JOHN });
    expect(group.session_name).toBe("family-chat");
    expect(group.session_id).not.toBe(john.session_id);

    const johnRecall = await send(JOHN, "what word did I ask you to remember?");
    expect(johnRecall.reply).toContain("You asked me to remember cinnamon");
    expect(johnRecall.session_id).toBe(john.session_id);

    // The group's header names the member who wrote, and the group.
    const groupRequest = model
      .mainRequests()
      .find((request) => request.userTexts.join().includes("paprika"))!;
    expect(groupRequest.userTexts.join()).toContain("Family Chat");
    expect(groupRequest.userTexts.join()).toContain("John Doe");
  });

  it("refuses chats it must not answer and malformed requests with clear errors", async () => {
    const stranger = await daemon!.api("POST", "/v1/messages", {
      chat_id: "+15550001111",
      text: "hi",
      wait: true,
    });
    expect(stranger.status).toBe(403);
    expect(stranger.json).toMatchObject({ error: { code: "unknown_sender" } });

    const malformed = await daemon!.api("POST", "/v1/messages", { chat_id: JOHN });
    expect(malformed.status).toBe(400);

    const unauthorised = await fetch(`http://127.0.0.1:${daemon!.port}/v1/sessions`);
    expect(unauthorised.status).toBe(401);
  });

  it("lists the sessions in `dispatch status` and sends through `dispatch send`", async () => {
    const status = await runCli(["status"], env);
    expect(status.code, status.stderr).toBe(0);
    for (const expected of [
      JOHN,
      JANE,
      GROUP,
      "John Doe",
      "Jane Roe",
      "Family Chat",
      "favorite",
      "family",
    ]) {
      expect(status.stdout).toContain(expected);
    }

    const sent = await runCli(["send", JOHN, "what word did I ask you to remember?"], env);
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stdout).toContain("You asked me to remember cinnamon");

    const chat = await runCli(["chat", JANE], env, "what word did I ask you to remember?\n");
    expect(chat.code, chat.stderr).toBe(0);
    expect(chat.stdout).toContain("You asked me to remember basil");
  });

  it("keeps every context and session id across a graceful restart", async () => {
    const before = sessionIds();
    expect(Object.keys(before).sort()).toEqual([JANE, JOHN, GROUP].sort());
    expect(await daemon!.stop("SIGTERM")).toBe(0);
    expect(daemon!.output()).toContain("daemon-stopped");

    daemon = await startDaemonProcess(env);
    expect(sessionIds()).toEqual(before);
    const john = await send(JOHN, "what word did I ask you to remember?");
    expect(john.reply).toContain("You asked me to remember cinnamon");
    expect(john.session_id).toBe(before[JOHN]);
    const jane = await send(JANE, "what word did I ask you to remember?");
    expect(jane.reply).toContain("You asked me to remember basil");
    expect(jane.session_id).toBe(before[JANE]);
  });

  it("keeps every context and session id across a kill -9, leaving no agent process behind", async () => {
    const before = sessionIds();
    const live = (await daemon!.api("GET", "/v1/sessions")).json as {
      chat_id: string;
      pid: number | null;
    }[];
    const agentPids = live.flatMap((session) => (session.pid ? [session.pid] : []));
    expect(agentPids.length).toBeGreaterThan(0);

    expect(await daemon!.stop("SIGKILL")).toBeNull();
    for (const pid of agentPids) {
      await waitUntil(() => !isProcessAlive(pid), 15_000, `agent process ${pid} to exit`);
    }

    daemon = await startDaemonProcess(env); // the dead daemon's lock does not block this start
    const john = await send(JOHN, "what word did I ask you to remember?");
    expect(john.reply).toContain("You asked me to remember cinnamon");
    expect(john.session_id).toBe(before[JOHN]);
    const group = await send(GROUP, "what word did I ask you to remember?", { sender: JANE });
    expect(group.reply).toContain("You asked me to remember paprika");
    expect(group.session_id).toBe(before[GROUP]);
  });

  it("refuses a second daemon on the same home with a clear message", async () => {
    const second = await runCli(["start"], { ...env, DISPATCH_PORT: String(await freePort()) });
    expect(second.code).toBe(1);
    expect(second.stderr).toContain("already running");
    expect(second.stderr).toContain(`pid ${daemon!.pid}`);
  });

  it("restarts and stops sessions through the API", async () => {
    const restarted = await daemon!.api("POST", `/v1/sessions/${encodeURIComponent(JOHN)}/restart`);
    expect(restarted.status).toBe(200);
    expect(restarted.json).toMatchObject({ chat_id: JOHN, restarts: 1, state: "idle" });

    const stopped = await daemon!.api("DELETE", `/v1/sessions/${encodeURIComponent(JOHN)}`);
    expect(stopped.status).toBe(200);
    const shown = await daemon!.api("GET", `/v1/sessions/${encodeURIComponent(JOHN)}`);
    expect(shown.json).toMatchObject({ state: "stopped" });

    const john = await send(JOHN, "what word did I ask you to remember?");
    expect(john.reply).toContain("You asked me to remember cinnamon");
  });
});

describe("the dispatch daemon without credentials", () => {
  it("answers the first message with an error that names what to set", async () => {
    const bare = await makeTempHome();
    const bareEnv = {
      PATH: process.env.PATH,
      HOME: bare.home,
      DISPATCH_PORT: String(await freePort()),
    };
    const bareDaemon = await startDaemonProcess(bareEnv);
    try {
      const response = await bareDaemon.api("POST", "/v1/messages", {
        chat_id: JOHN,
        text: "hi",
        wait: true,
      });
      expect(response.status).toBe(503);
      expect(response.json).toMatchObject({ error: { code: "no_credentials" } });
      expect(JSON.stringify(response.json)).toContain("ANTHROPIC_API_KEY");
      expect(JSON.stringify(response.json)).toContain("npm run demo");
    } finally {
      expect(await bareDaemon.stop("SIGTERM")).toBe(0);
      await bare.remove();
    }
  });
});
