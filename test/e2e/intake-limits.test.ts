import { readFileSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { createChatDb, type ChatDbFixture } from "../support/chat-db.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { daemonEnv } from "../support/daemon-home.js";
import { readRegistryRows } from "../support/home-registry.js";
import { makeTempHome, waitUntil } from "../support/real-manager.js";
import { RECORDING_SEND } from "../support/recorded-sends.js";

/**
 * Fair limits on what comes in (issue 12), through the real daemon process, the real SDK and its
 * CLI against the stand-in model: one rate budget per person however their number is written,
 * on every channel, and a bounded intake of new strangers that never holds up a contact.
 */
const JOHN = "+15551234567";
const JANE = "jane@example.com";

interface Setup {
  model: StandInModel;
  home: { home: string; remove(): Promise<void> };
  env: NodeJS.ProcessEnv;
  daemon?: DaemonProcess;
  chatDb?: ChatDbFixture;
}

let setup: Setup | undefined;

afterEach(async () => {
  if (!setup) return;
  // A graceful stop (without grace for running turns) ends every agent process before the
  // home they write in is removed.
  if (setup.daemon) await setup.daemon.stop("SIGTERM");
  setup.chatDb?.close();
  await setup.model.close();
  await setup.home.remove();
  setup = undefined;
});

/** A temp home with contacts.json and the config `configFor` gives for it, and the stand-in. */
async function prepare(configFor: (home: string) => Record<string, unknown>): Promise<Setup> {
  const model = await startStandInModel();
  const home = await makeTempHome();
  const dispatchHome = path.join(home.home, "dispatch");
  await mkdir(dispatchHome, { recursive: true });
  await writeFile(
    path.join(dispatchHome, "config.json"),
    JSON.stringify({ shutdownGraceSeconds: 0, ...configFor(home.home) }),
  );
  await writeFile(
    path.join(dispatchHome, "contacts.json"),
    JSON.stringify({
      contacts: [
        { name: "John Doe", tier: "favorite", handles: [JOHN] },
        { name: "Jane Roe", tier: "family", handles: [JANE] },
      ],
    }),
  );
  setup = {
    model,
    home,
    env: await daemonEnv(home.home, model.url),
  };
  return setup;
}

interface Posted {
  status: number;
  retryAfter: string | null;
  body: { error?: { code: string; message: string }; reply?: string | null; chat_id?: string };
}

async function post(daemon: DaemonProcess, body: Record<string, unknown>): Promise<Posted> {
  const response = await fetch(`http://127.0.0.1:${daemon.port}/v1/messages`, {
    method: "POST",
    headers: { authorization: `Bearer ${daemon.token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return {
    status: response.status,
    retryAfter: response.headers.get("retry-after"),
    body: (await response.json()) as Posted["body"],
  };
}

function journalRows(home: string, sql: string, ...params: unknown[]): Record<string, unknown>[] {
  const db = new BetterSqlite3(path.join(home, "dispatch", "state", "journal.db"), {
    readonly: true,
  });
  try {
    return db.prepare(sql).all(...params) as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

describe("intake limits, end to end", () => {
  it("gives one person one rate budget however their number is written (regression: four spellings got four budgets)", async () => {
    const { env, home } = await prepare(() => ({ defaultRegion: "US" }));
    const daemon = (setup!.daemon = await startDaemonProcess(env));
    const spellings = [JOHN, "(555) 123-4567", "+1 555 123 4567", "15551234567"];
    // The default budget is 30 a minute, refilled one every 2 s. The spellings write in turn
    // until the first refusal: one budget refuses after 30 (plus what refilled meanwhile), while
    // four budgets (main) would take all 60. The first message holds its turn, so the agent is
    // not kept busy by the rest (they queue behind it).
    let accepted = 0;
    let refused: Posted | undefined;
    for (let index = 0; index < 60 && refused === undefined; index++) {
      const result = await post(daemon, {
        chat_id: spellings[index % spellings.length],
        text: index === 0 ? "[[delay 60000]] first" : `message ${index}`,
      });
      if (result.status === 202) accepted += 1;
      else refused = result;
    }
    expect(refused?.status).toBe(429);
    expect(accepted).toBeGreaterThanOrEqual(30);
    expect(accepted).toBeLessThan(60);
    expect(refused!.body.error).toMatchObject({ code: "rate_limited" });
    expect(refused!.body.error!.message).toContain(`Chat ${JOHN} sent more than 30 messages`);
    expect(Number(refused!.retryAfter)).toBeGreaterThanOrEqual(1);
    // A refused request leaves no trace: the client is told to send it again later.
    expect(journalRows(home.home, "SELECT id FROM inbound")).toHaveLength(accepted);
  });

  it("limits an iMessage chat the same way: the message beyond the budget is journaled as rejected, and the channel reads on", async () => {
    const { env, home, model } = await prepare((folder) => ({
      messagesPerChatPerMinute: 2,
      channels: {
        imessage: {
          enabled: true,
          dbPath: path.join(folder, "chat.db"),
          pollIntervalMs: 50,
          sendCommand: [process.execPath, RECORDING_SEND, path.join(folder, "sent.jsonl")],
        },
      },
    }));
    const recordFile = path.join(home.home, "sent.jsonl");
    await writeFile(recordFile, "");
    const chatDb = (setup!.chatDb = createChatDb(path.join(home.home, "chat.db")));
    setup!.daemon = await startDaemonProcess(env);

    chatDb.oneToOneChat(JOHN);
    chatDb.oneToOneChat(JANE);
    chatDb.text(JOHN, "tell me about plums");
    chatDb.text(JOHN, "tell me about pears");
    const third = chatDb.text(JOHN, "tell me about kumquats");
    chatDb.text(JANE, "tell me about figs");

    const byGuid = () =>
      new Map(
        journalRows(
          home.home,
          "SELECT external_id, status, error_code, error_message FROM inbound",
        ).map((row) => [row.external_id as string, row]),
      );
    const sentText = () => readFileSync(recordFile, "utf8");
    // Answered in the journal comes before the send: wait for Jane's reply to have gone out.
    await waitUntil(
      () => {
        const rows = [...byGuid().values()];
        const settled = rows.length === 4 && rows.every((row) => row.status !== "delivered");
        return settled && sentText().includes("figs");
      },
      60_000,
      "every row answered or rejected, and the last reply sent",
    );
    const rows = byGuid();
    const rejected = rows.get(third.guid)!;
    expect(rejected).toMatchObject({ status: "rejected", error_code: "rate_limited" });
    expect(rejected.error_message).toContain(`Chat ${JOHN} sent more than 2 messages a minute`);
    expect([...rows.values()].filter((row) => row.status === "answered")).toHaveLength(3);
    expect(sentText()).not.toContain("kumquats");
    const asked = model
      .mainRequests()
      .flatMap((request) => request.userTexts)
      .join("\n");
    expect(asked).not.toContain("kumquats");
  });

  it("takes a bounded number of new strangers a minute and answers a favorite ahead of them (regression: 1,000 new chats grew the registry without bound and a favorite waited)", async () => {
    // Only keys main already knows: the per-minute bound and the slot kept for contacts are defaults.
    const { env, home, model } = await prepare(() => ({
      unknownSenders: "respond",
      maxLiveSessions: 3,
      spareProcesses: 0,
    }));
    const daemon = (setup!.daemon = await startDaemonProcess(env));
    const completed: string[] = [];
    const strangers = Array.from(
      { length: 60 },
      (_unused, index) => `stranger-${String(index).padStart(2, "0")}@example.com`,
    );
    const flood = strangers.map((chatId) =>
      post(daemon, {
        chat_id: chatId,
        text: `[[delay 500]] hello from ${chatId}`,
        wait: true,
      }).then((result) => {
        if (result.status === 200) completed.push(chatId);
        return result;
      }),
    );
    // The favorite writes once strangers' turns hold the slots they may take.
    await model.waitForRequests(1, (request) => request.userTexts.join().includes("stranger-"));
    const favorite = post(daemon, { chat_id: JOHN, text: "hello, it is John", wait: true }).then(
      (result) => {
        completed.push(JOHN);
        return result;
      },
    );
    const results = await Promise.all(flood);
    const john = await favorite;

    expect(john.status).toBe(200);
    expect(john.body.reply).toContain("hello, it is John");

    const admitted = results.filter((result) => result.status === 200);
    const refused = results.filter((result) => result.status !== 200);
    expect(admitted).toHaveLength(20);
    expect(refused).toHaveLength(40);
    for (const result of refused) {
      expect(result.status).toBe(429);
      expect(result.body.error?.code).toBe("too_many_new_chats");
      expect(result.body.error?.message).toContain("newUnknownChatsPerMinute");
      expect(Number(result.retryAfter)).toBeGreaterThanOrEqual(1);
    }
    // Served ahead of the flood's tail: at least half the strangers taken were answered after
    // John (on main he waited for a slot behind all of them, and came 60th of 61).
    const answeredAfterJohn = completed.length - 1 - completed.indexOf(JOHN);
    expect(answeredAfterJohn).toBeGreaterThanOrEqual(10);

    // Only the admitted strangers (and John) left anything behind.
    expect(Object.keys(readRegistryRows(home.home))).toHaveLength(21);
    expect(await readdir(path.join(home.home, "transcripts"))).toHaveLength(21);
    const projects = await readdir(path.join(home.home, ".claude", "projects"));
    expect(projects.filter((name) => name.includes("transcripts"))).toHaveLength(21);
    expect(journalRows(home.home, "SELECT id FROM inbound")).toHaveLength(21);
  }, 300_000);
});
