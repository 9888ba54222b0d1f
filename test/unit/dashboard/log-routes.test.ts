import { Writable } from "node:stream";
import { beforeEach, describe, expect, it } from "vitest";
import { createDashboardRoutes } from "../../../src/dashboard/dashboard-routes.js";
import { createLogRing, type LogLine, type LogRing } from "../../../src/logging/log-ring.js";
import { createLogger, type Logger } from "../../../src/logging/logger.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { FakeDashboardContacts } from "./fake-dashboard-contacts.js";
import { FakeDashboardSource } from "./fake-dashboard-source.js";

const TOKEN = "test-token-0123456789";
const AUTH = { Authorization: `Bearer ${TOKEN}` };

let ring: LogRing;
let daemonLog: Logger;
let source: FakeDashboardSource;
let app: ReturnType<typeof createDashboardRoutes>;

beforeEach(() => {
  ring = createLogRing();
  ring.addSecrets([TOKEN]);
  daemonLog = createLogger({
    destination: new Writable({ write: (_chunk, _encoding, done) => done() }),
    copyTo: ring.stream,
  });
  source = new FakeDashboardSource();
  app = createDashboardRoutes({
    source,
    contacts: new FakeDashboardContacts(),
    log: ring,
    token: TOKEN,
    logger: createMemoryLogger(),
    heartbeatMs: 60_000,
  });
});

type Event = { event: string; id: string | undefined; data: string };

/** Reads whole server-sent events from a response body. */
function eventReader(response: Response) {
  const reader: ReadableStreamDefaultReader<Uint8Array> = response.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  return {
    async next(count: number): Promise<Event[]> {
      for (;;) {
        const blocks = buffer.split("\n\n");
        if (blocks.length > count) {
          buffer = blocks.slice(count).join("\n\n");
          return blocks.slice(0, count).map((block) => ({
            event: /^event: (.*)$/m.exec(block)?.[1] ?? "",
            id: /^id: (.*)$/m.exec(block)?.[1],
            data: /^data: (.*)$/m.exec(block)?.[1] ?? "",
          }));
        }
        const { value, done } = await reader.read();
        if (done) throw new Error(`the stream ended after: ${buffer}`);
        buffer += decoder.decode(value, { stream: true });
      }
    },
    async ended(): Promise<boolean> {
      for (;;) if ((await reader.read()).done) return true;
    },
    cancel: () => reader.cancel(),
  };
}

describe("the dashboard's log routes", () => {
  it("want the bearer token", async () => {
    expect((await app.request("/v1/dashboard/logs")).status).toBe(401);
    expect((await app.request("/v1/dashboard/logs/events")).status).toBe(401);
  });

  it("give the recent lines, or those after a seq, with the API token redacted", async () => {
    daemonLog.info("daemon-start", { port: 7878 });
    daemonLog.warn("token check", { header: `Bearer ${TOKEN}` });
    const all = (await (await app.request("/v1/dashboard/logs", { headers: AUTH })).json()) as {
      lines: LogLine[];
    };
    expect(all.lines.map((line) => [line.seq, line.message])).toEqual([
      [1, "daemon-start"],
      [2, "token check"],
    ]);
    expect(JSON.stringify(all)).not.toContain(TOKEN);
    const after = (await (
      await app.request("/v1/dashboard/logs?after=1", { headers: AUTH })
    ).json()) as { lines: LogLine[] };
    expect(after.lines.map((line) => line.seq)).toEqual([2]);
    const bad = await app.request("/v1/dashboard/logs?after=two", { headers: AUTH });
    expect(bad.status).toBe(400);
  });

  it("streams the recent lines, then each new one as it is logged, each with its seq as id", async () => {
    daemonLog.info("first");
    const response = await app.request("/v1/dashboard/logs/events", { headers: AUTH });
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const events = eventReader(response);
    const [backlog] = await events.next(1);
    expect(backlog).toMatchObject({ event: "lines", id: "1" });
    expect((JSON.parse(backlog!.data) as LogLine[]).map((line) => line.message)).toEqual(["first"]);
    daemonLog.error("session-restart-failed", { chatId: "+15551234567" });
    const [next] = await events.next(1);
    expect(next).toMatchObject({ event: "line", id: "2" });
    expect(JSON.parse(next!.data)).toMatchObject({
      seq: 2,
      level: "error",
      message: "session-restart-failed",
      fields: { chatId: "+15551234567" },
    });
    await events.cancel();
  });

  it("resumes after Last-Event-ID with only the lines missed", async () => {
    for (const message of ["a", "b", "c"]) daemonLog.info(message);
    const response = await app.request("/v1/dashboard/logs/events", {
      headers: { ...AUTH, "Last-Event-ID": "2" },
    });
    const events = eventReader(response);
    const [backlog] = await events.next(1);
    expect((JSON.parse(backlog!.data) as LogLine[]).map((line) => line.message)).toEqual(["c"]);
    expect(backlog!.id).toBe("3");
    await events.cancel();
  });

  it("ends the stream when the daemon shuts down, so the server can close", async () => {
    const response = await app.request("/v1/dashboard/logs/events", { headers: AUTH });
    const events = eventReader(response);
    await events.next(1);
    source.end();
    expect(await events.ended()).toBe(true);
  });
});
