import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SessionView } from "../../../src/channels/http/control-plane.js";
import { ManualClock } from "../../support/manual-clock.js";
import { asChatId } from "../../../src/utils/ids.js";
import { createActivityFeed, type ActivityFeed } from "../../../src/dashboard/activity-feed.js";
import {
  createDaemonDashboardSource,
  type CostsLike,
  type DaemonDashboardSource,
  type PoolLike,
} from "../../../src/dashboard/daemon-source.js";
import type { DashboardSession } from "../../../src/dashboard/dashboard-source.js";
import { claudeProjectKey } from "../../../src/agent/claude-cli-layout.js";
import { createLogger } from "../../../src/logging/logger.js";
import { FakeControlPlane } from "../../support/fake-control-plane.js";
import { REGISTRY_FIELDS } from "../../../src/store/registry-file-format.js";

const JOHN = "+15551234567";
const JANE = "+15559876543";
const START = Date.parse("2026-03-01T12:00:00.000Z");

let clock: ManualClock;
let control: FakeControlPlane;
let manager: { pool?: () => PoolLike };
let activity: ActivityFeed;
let source: DaemonDashboardSource | undefined;
let root: string;

function set(chatId: string, view: Partial<SessionView>): void {
  control.addSession({ ...control.sessions.get(chatId), ...view, chat_id: chatId });
}

function open(
  options: { costs?: CostsLike; sparesReady?: () => number; demo?: boolean } = {},
): DaemonDashboardSource {
  source = createDaemonDashboardSource({
    dispatcher: control,
    manager,
    activity,
    transcriptsDir: path.join(root, "transcripts"),
    claudeDir: path.join(root, ".claude"),
    logger: createLogger({ level: "silent" }),
    clock,
    spareProcesses: 2,
    ...options,
  });
  return source;
}

beforeEach(async () => {
  clock = new ManualClock(START);
  control = new FakeControlPlane((text) => `re: ${text}`);
  manager = {};
  activity = createActivityFeed({ clock });
  root = await mkdtemp(path.join(os.tmpdir(), "dispatch-dashboard-source-"));
  set(JOHN, { turns: 0, unanswered: 0, last_message_time: null, state: "stopped" });
});

afterEach(async () => {
  source?.close();
  source = undefined;
  await rm(root, { recursive: true, force: true });
});

describe("createDaemonDashboardSource", () => {
  it("says whether the daemon runs in demo mode, and its version", () => {
    expect(open().about()).toEqual({
      version: control.health().version,
      demo: false,
      registry_fields: REGISTRY_FIELDS,
    });
    source!.close();
    expect(open({ demo: true }).about()).toMatchObject({ demo: true });
  });

  it("tells subscribers the full list when a look finds a change, and only then", () => {
    const dashboard = open();
    const seen: DashboardSession[][] = [];
    dashboard.subscribe((sessions) => seen.push(sessions));

    clock.advance(1_000);
    expect(seen).toEqual([]);

    set(JANE, { contact_name: "Jane Roe", state: "busy", unanswered: 1 });
    clock.advance(1_000);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.map((session) => [session.chat_id, session.state])).toEqual([
      [JOHN, "stopped"],
      [JANE, "busy"],
    ]);
    clock.advance(3_000);
    expect(seen).toHaveLength(1);
  });

  it("walks the sessions only while a page is subscribed", () => {
    let looks = 0;
    const listSessions = control.listSessions.bind(control);
    control.listSessions = () => {
      looks += 1;
      return listSessions();
    };
    const dashboard = open();
    clock.advance(10_000);
    expect(looks).toBe(0);

    const unsubscribe = dashboard.subscribe(() => {});
    clock.advance(3_000);
    expect(looks).toBeGreaterThanOrEqual(3);

    unsubscribe();
    const before = looks;
    clock.advance(10_000);
    expect(looks).toBe(before);
  });

  it("shows the activity the daemon's events fed, and infers none from the sessions", () => {
    const dashboard = open();
    // The sessions' counts change, but only events make activity.
    set(JOHN, {
      state: "idle",
      turns: 5,
      errors: 1,
      last_message_time: new Date(START).toISOString(),
    });
    clock.advance(2_000);
    expect(dashboard.health().hours.at(-1)).toMatchObject({ messages: 0, replies: 0, errors: 0 });
    expect(dashboard.health().recent_errors).toEqual([]);

    activity.messageAccepted(JOHN, "m1");
    clock.advance(1_200);
    activity.turnEnded({ chatId: JOHN, messageIds: ["m1"], isError: false });
    activity.sessionEvent({ type: "fail", chatId: asChatId(JOHN), cause: "exit code 1" });
    expect(dashboard.health().hours.at(-1)).toMatchObject({
      messages: 1,
      replies: 1,
      errors: 1,
      latency_avg_ms: 1_200,
    });
    expect(dashboard.health().recent_errors.map((error) => error.code)).toEqual(["session_failed"]);
  });

  it("restarts through the dispatcher, records why once, and tells subscribers at once", async () => {
    set(JOHN, { state: "idle" });
    const dashboard = open();
    const seen: DashboardSession[][] = [];
    dashboard.subscribe((sessions) => seen.push(sessions));
    const restarting = dashboard.restart(JOHN);
    // The fake control plane's restart bumps the count; the manager shows it on the next look.
    const restarted = await restarting;
    expect(restarted).toMatchObject({ chat_id: JOHN, restarts: 1, memory_bytes: null });
    expect(control.restarts).toEqual([JOHN]);
    expect(seen.at(-1)!.find((session) => session.chat_id === JOHN)!.restarts).toBe(1);

    // The session manager reports the restart as an operator's: the dashboard names itself.
    clock.advance(1_000);
    activity.sessionEvent({ type: "restart", chatId: asChatId(JOHN), reason: "requested" });
    expect(dashboard.health().recent_restarts).toEqual([
      {
        chat_id: JOHN,
        at: new Date(START + 1_000).toISOString(),
        reason: "requested from the dashboard",
      },
    ]);
  });

  it("names a restart of a stopped session, the page's Start, as a start", async () => {
    const dashboard = open();
    await dashboard.restart(JOHN);
    activity.sessionEvent({ type: "restart", chatId: asChatId(JOHN), reason: "requested" });
    expect(dashboard.health().recent_restarts.map((restart) => restart.reason)).toEqual([
      "started from the dashboard",
    ]);
  });

  it("stops and forgets through the dispatcher", async () => {
    const dashboard = open();
    await dashboard.stop(JOHN);
    await dashboard.forget(JOHN);
    expect(control.stops).toEqual([
      { chatId: JOHN, forget: false },
      { chatId: JOHN, forget: true },
    ]);
    expect(dashboard.getSession(JOHN)).toBeUndefined();
  });

  it("sends as the chat over the http channel, waiting for the reply", async () => {
    const dashboard = open();
    expect(await dashboard.send(JOHN, "hello")).toBe("re: hello");
    expect(control.submits).toEqual([
      {
        message: { channel: "http", chatId: JOHN, text: "hello", receivedAt: new Date(START) },
        options: { wait: true },
      },
    ]);
  });

  it("reads the session's transcript from the CLI's project folder", async () => {
    const dashboard = open();
    set(JOHN, { session_id: "abc-123", session_name: "john-doe" });
    const cwd = path.join(root, "transcripts", "john-doe");
    const folder = path.join(root, ".claude", "projects", claudeProjectKey(cwd));
    await mkdir(folder, { recursive: true });
    await writeFile(
      path.join(folder, "abc-123.jsonl"),
      [
        {
          type: "user",
          message: { role: "user", content: "hi" },
          timestamp: "2026-03-01T12:00:00Z",
        },
        {
          type: "assistant",
          message: { id: "m1", role: "assistant", content: [{ type: "text", text: "hello" }] },
          timestamp: "2026-03-01T12:00:01Z",
        },
      ]
        .map((line) => JSON.stringify(line))
        .join("\n"),
    );
    const turns = await dashboard.transcript(JOHN);
    expect(turns.map((turn) => [turn.inputs[0]!.text, turn.steps[0]])).toEqual([
      ["hi", { kind: "text", text: "hello", at: "2026-03-01T12:00:01Z" }],
    ]);
    expect(await dashboard.transcript(JANE)).toEqual([]);
    set(JOHN, { session_id: null });
    expect(await dashboard.transcript(JOHN)).toEqual([]);
  });

  it("shows queues deepest first, the pool and the spares in health", () => {
    manager.pool = () => ({ live: 2, bound: 4, waiting: 1, evictions: 3 });
    set(JANE, { contact_name: "Jane Roe", unanswered: 4, state: "busy" });
    set(JOHN, { unanswered: 1, state: "busy" });
    const health = open().health();
    expect(health.queues.map((queue) => [queue.chat_id, queue.unanswered])).toEqual([
      [JANE, 4],
      [JOHN, 1],
    ]);
    expect(health.sessions).toEqual({ registered: 2, live: 0, bound: 4, waiting: 1, evictions: 3 });
    expect(health.spares).toEqual({ configured: 2, ready: null });
    source!.close();
    expect(open({ sparesReady: () => 1 }).health().spares).toEqual({ configured: 2, ready: 1 });
    expect(health.version).toBe("0.1.0-test");

    manager.pool = () => ({ live: 2, bound: Number.POSITIVE_INFINITY, waiting: 0, evictions: 0 });
    expect(source!.health().sessions.bound).toBeNull();
  });

  it("ends every subscription once the daemon is shutting down", () => {
    const dashboard = open();
    const ended: string[] = [];
    dashboard.subscribe(
      () => {},
      () => ended.push("first"),
    );
    control.status = "shutting_down";
    clock.advance(1_000);
    expect(ended).toEqual(["first"]);
    dashboard.subscribe(
      () => {},
      () => ended.push("late"),
    );
    expect(ended).toEqual(["first", "late"]);
  });

  it("adds the live process's memory", async () => {
    set(JOHN, { pid: process.pid, state: "idle" });
    const dashboard = open();
    expect(dashboard.getSession(JOHN)!.memory_bytes).toBeNull(); // read only while a page looks
    dashboard.subscribe(() => {});
    for (let attempt = 0; attempt < 100; attempt += 1) {
      if (dashboard.getSession(JOHN)!.memory_bytes !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(dashboard.getSession(JOHN)!.memory_bytes).toBeGreaterThan(1024 * 1024);
    expect(dashboard.listSessions()[0]!.memory_bytes).toBeGreaterThan(1024 * 1024);
  });

  it("adds the cost so far of the chat's current and earlier sessions, null when none is recorded", () => {
    const asked: string[][] = [];
    const costs: CostsLike = {
      costOf: (sessionIds) => {
        asked.push([...sessionIds]);
        return sessionIds.includes("old-1")
          ? { costUsd: 0.5, turns: 4, unknownTurns: 1 }
          : { costUsd: 0, turns: 0, unknownTurns: 0 };
      },
      recentTurns: () => Promise.resolve([]),
    };
    set(JOHN, {
      session_id: "abc-123",
      previous_session_ids: [
        {
          session_id: "old-1",
          replaced_at: "2026-02-01T10:00:00.000Z",
          reason: "context overflow",
        },
      ],
    });
    set(JANE, { session_id: "jane-1" });
    const dashboard = open({ costs });
    expect(dashboard.getSession(JOHN)).toMatchObject({
      cost_so_far_usd: 0.5,
      cost_unknown_turns: 1,
    });
    expect(asked.at(-1)).toEqual(["abc-123", "old-1"]);
    expect(dashboard.getSession(JANE)).toMatchObject({
      cost_so_far_usd: null,
      cost_unknown_turns: 0,
    });
  });

  it("puts each recorded turn's cost on the transcript turn holding its message", async () => {
    const costs: CostsLike = {
      costOf: () => ({ costUsd: 0, turns: 0, unknownTurns: 0 }),
      recentTurns: (chatId, limit) => {
        expect([chatId, limit]).toEqual([JOHN, 1_000]);
        return Promise.resolve([
          { messageUuids: ["uuid-2"], costUsd: 0.25 },
          { messageUuids: ["uuid-1"], costUsd: 0.125 },
        ]);
      },
    };
    const dashboard = open({ costs });
    set(JOHN, { session_id: "abc-123", session_name: "john-doe" });
    const folder = path.join(
      root,
      ".claude",
      "projects",
      claudeProjectKey(path.join(root, "transcripts", "john-doe")),
    );
    await mkdir(folder, { recursive: true });
    const line = (type: string, id: string, text: string, second: number) =>
      JSON.stringify(
        type === "user"
          ? {
              type,
              uuid: id,
              message: { role: "user", content: text },
              timestamp: `2026-03-01T12:00:0${second}Z`,
            }
          : {
              type,
              message: { id, role: "assistant", content: [{ type: "text", text }] },
              timestamp: `2026-03-01T12:00:0${second}Z`,
            },
      );
    await writeFile(
      path.join(folder, "abc-123.jsonl"),
      [
        line("user", "uuid-1", "first", 0),
        line("assistant", "m1", "one", 1),
        line("user", "uuid-unrecorded", "second", 2),
        line("assistant", "m2", "two", 3),
        line("user", "uuid-2", "third", 4),
        line("assistant", "m3", "three", 5),
      ].join("\n"),
    );
    const turns = await dashboard.transcript(JOHN);
    expect(turns.map((turn) => [turn.inputs[0]!.text, turn.cost_usd])).toEqual([
      ["first", 0.125],
      ["second", null],
      ["third", 0.25],
    ]);
  });

  it("reads a resumed session's transcript from the mirror, where the CLI's file stopped", async () => {
    const entry = (type: "user" | "assistant", text: string, second: number) =>
      type === "user"
        ? {
            type,
            message: { role: "user", content: text },
            timestamp: `2026-03-01T12:00:0${second}Z`,
          }
        : {
            type,
            message: { id: `m${second}`, role: "assistant", content: [{ type: "text", text }] },
            timestamp: `2026-03-01T12:00:0${second}Z`,
          };
    const beforeResume = [entry("user", "hi", 0), entry("assistant", "hello", 1)];
    let mirror: unknown[] = [
      ...beforeResume,
      entry("user", "again", 2),
      entry("assistant", "yes", 3),
    ];
    source = createDaemonDashboardSource({
      dispatcher: control,
      manager,
      activity,
      transcriptsDir: path.join(root, "transcripts"),
      claudeDir: path.join(root, ".claude"),
      transcriptMirror: {
        recentEntries: (sessionId) => Promise.resolve(sessionId === "abc-123" ? mirror : []),
      },
      logger: createLogger({ level: "silent" }),
      clock,
    });
    set(JOHN, { session_id: "abc-123", session_name: "john-doe" });
    const folder = path.join(
      root,
      ".claude",
      "projects",
      claudeProjectKey(path.join(root, "transcripts", "john-doe")),
    );
    await mkdir(folder, { recursive: true });
    await writeFile(
      path.join(folder, "abc-123.jsonl"),
      beforeResume.map((line) => JSON.stringify(line)).join("\n"),
    );
    const texts = async () =>
      (await source!.transcript(JOHN)).map((turn) => [turn.inputs[0]!.text, turn.steps.length]);
    expect(await texts()).toEqual([
      ["hi", 1],
      ["again", 1],
    ]);
    // The mirror is written in batches: when it lags behind the file, the file wins.
    mirror = [entry("user", "hi", 0)];
    expect(await texts()).toEqual([["hi", 1]]);
    mirror = [];
    expect(await texts()).toEqual([["hi", 1]]);
  });
});
