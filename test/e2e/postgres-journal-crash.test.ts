/**
 * A daemon whose journal is in PostgreSQL (`DISPATCH_DATABASE_URL`), killed with `kill -9` while
 * messages it accepted (`202`) are still unanswered: after a start again, each is answered exactly
 * once, from the journal the database kept. Real daemon processes, the real SDK and CLI, the
 * stand-in model, the test run's private PostgreSQL server.
 */

import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import BetterSqlite3 from "better-sqlite3";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { createTestDatabase } from "../support/postgres-server.js";
import { makeDaemonHome, type DaemonHome } from "../support/daemon-home.js";

const CHATS = ["+15551230001", "+15551230002", "+15551230003"];

let model: StandInModel;
let home: DaemonHome;
let env: NodeJS.ProcessEnv;
let daemon: DaemonProcess | undefined;
let url: string;

beforeAll(async () => {
  url = await createTestDatabase();
  model = await startStandInModel();
  home = await makeDaemonHome({
    modelUrl: model.url,
    contacts: {
      contacts: CHATS.map((handle, index) => ({
        name: `Person ${index + 1}`,
        tier: "favorite",
        handles: [handle],
      })),
    },
    env: { DISPATCH_DATABASE_URL: url },
  });
  env = home.env;
  daemon = await startDaemonProcess(env);
});

afterAll(async () => {
  if (daemon) await daemon.stop("SIGKILL");
  await model.close();
  await home.remove();
});

describe("the journal in PostgreSQL", () => {
  it("answers each message accepted before a kill -9 exactly once after the restart", async () => {
    const words = ["walnut", "saffron", "juniper"];
    for (const [index, chat] of CHATS.entries()) {
      const accepted = await daemon!.api("POST", "/v1/messages", {
        chat_id: chat,
        text: `[[delay 4000]] remember the word ${words[index]}`,
        message_id: `pg-${index}`,
      });
      expect(accepted.status).toBe(202);
    }
    await model.waitForRequests(3, (request) =>
      words.some((word) => request.userTexts.at(-1)?.includes(word) === true),
    );
    expect(await daemon!.stop("SIGKILL")).toBeNull();

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      // Accepted and not answered: in the database, not in the SQLite file.
      const open = await client.query<{ external_id: string }>(
        `SELECT external_id FROM inbound WHERE status IN ('received', 'delivered')
         ORDER BY external_id`,
      );
      expect(open.rows.map((row) => row.external_id)).toEqual(["pg-0", "pg-1", "pg-2"]);

      daemon = await startDaemonProcess(env);
      // The same ids again, waiting: each joins its replayed message.
      const replies = await Promise.all(
        CHATS.map((chat, index) =>
          daemon!.api("POST", "/v1/messages", {
            chat_id: chat,
            text: `[[delay 4000]] remember the word ${words[index]}`,
            message_id: `pg-${index}`,
            wait: true,
          }),
        ),
      );
      replies.forEach((reply, index) => {
        expect(reply.status).toBe(200);
        expect((reply.json as { reply: string }).reply).toContain(
          `I will remember ${words[index]}`,
        );
      });

      const rows = await client.query<{ external_id: string; status: string; parts: string }>(
        `SELECT external_id, status,
           (SELECT count(*) FROM outbox WHERE outbox.inbound_id = inbound.id) AS parts
         FROM inbound ORDER BY external_id`,
      );
      // Answered once each: one message row, one reply, no second turn's reply anywhere.
      expect(rows.rows).toEqual(
        ["pg-0", "pg-1", "pg-2"].map((id) => ({ external_id: id, status: "answered", parts: "1" })),
      );
      const { rows: outbox } = await client.query<{ count: string }>(
        `SELECT count(*) AS count FROM outbox`,
      );
      expect(Number(outbox[0]!.count)).toBe(3);
    } finally {
      await client.end();
    }
    // The SQLite state file holds no message: the daemon's journal was PostgreSQL.
    const state = new BetterSqlite3(path.join(home.home, "dispatch", "state", "journal.db"), {
      readonly: true,
    });
    try {
      expect(state.prepare("SELECT count(*) FROM inbound").pluck().get()).toBe(0);
    } finally {
      state.close();
    }
  });
});
