import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SessionView } from "../../../src/channels/http/control-plane.js";
import { ManualClock } from "../../../src/core/clock.js";
import { asAgentSessionId, asChatId, asSessionName } from "../../../src/core/ids.js";
import type { SessionStatus } from "../../../src/core/session-manager.js";
import type { SessionSnapshot } from "../../../src/core/session.js";
import { createActivityLog, type ActivityLog } from "../../../src/dashboard/activity-log.js";
import {
  createDaemonDashboardSource,
  type DaemonDashboardSource,
  type PoolLike,
} from "../../../src/dashboard/daemon-source.js";
import type { DashboardSession } from "../../../src/dashboard/dashboard-source.js";
import { projectFolderName } from "../../../src/dashboard/transcript-file.js";
import { createLogger } from "../../../src/logging/logger.js";
import { FakeControlPlane } from "../../support/fake-control-plane.js";

const JOHN = "+15551234567";
const JANE = "+15559876543";
const START = Date.parse("2026-03-01T12:00:00.000Z");

/** The manager's side of a session, kept in step with the control plane's view by `set`. */
class FakeManager {
  readonly statuses = new Map<string, SessionStatus>();
  pool?: () => PoolLike;
  list(): SessionStatus[] {
    return [...this.statuses.values()];
  }
}

let clock: ManualClock;
let control: FakeControlPlane;
let manager: FakeManager;
let activity: ActivityLog;
let source: DaemonDashboardSource | undefined;
let root: string;

function set(chatId: string, view: Partial<SessionView>, live?: Partial<SessionSnapshot>): void {
  const current = control.sessions.get(chatId);
  const next = control.addSession({ ...current, ...view, chat_id: chatId });
  manager.statuses.set(chatId, {
    chat_id: asChatId(chatId),
    session_name: asSessionName(next.session_name),
    contact_name: next.contact_name,
    tier: next.tier,
    session_id: next.session_id === null ? null : asAgentSessionId(next.session_id),
    created_at: next.created_at,
    last_message_time: next.last_message_time,
    chat_kind: "individual",
    channel: next.channel,
    previous_session_ids: [],
    turns: next.turns,
    errors: next.errors,
    restarts: next.restarts,
    state: next.state as SessionStatus["state"],
    queued: next.unanswered,
    live:
      live === undefined
        ? undefined
        : {
            state: "idle",
            agentSessionId: asAgentSessionId(next.session_id ?? "x"),
            turns: next.turns,
            consecutiveErrors: 0,
            lastActivityMs: START,
            busySinceMs: undefined,
            unanswered: next.unanswered,
            pid: next.pid ?? undefined,
            processAlive: true,
            loopCrashed: false,
            totalCostUsd: 0,
            ...live,
          },
  });
}

function open(options: { inferActivity?: boolean } = {}): DaemonDashboardSource {
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
  manager = new FakeManager();
  activity = createActivityLog();
  root = await mkdtemp(path.join(os.tmpdir(), "dispatch-dashboard-source-"));
  set(JOHN, { turns: 0, unanswered: 0, last_message_time: null, state: "stopped" });
});

afterEach(async () => {
  source?.close();
  source = undefined;
  await rm(root, { recursive: true, force: true });
});

describe("createDaemonDashboardSource", () => {
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

  it("feeds the activity log from what changed between looks", () => {
    const dashboard = open();
    const sent = START + 500;
    clock.advance(500);
    set(
      JOHN,
      { state: "idle", turns: 1, last_message_time: new Date(sent).toISOString() },
      { lastActivityMs: sent + 1_200 },
    );
    clock.advance(1_000);
    const hour = dashboard.health().hours.at(-1)!;
    expect(hour).toMatchObject({ messages: 1, replies: 1, latency_avg_ms: 1_200 });

    set(JOHN, { state: "failed", turns: 2, errors: 1 });
    clock.advance(1_000);
    expect(dashboard.health().recent_errors.map((error) => error.code)).toEqual([
      "session_failed",
      "turn_error",
    ]);
  });

  it("records nothing itself when the daemon feeds the log (inferActivity: false)", () => {
    const dashboard = open({ inferActivity: false });
    set(JOHN, { turns: 5, last_message_time: new Date(START).toISOString() });
    clock.advance(2_000);
    expect(dashboard.health().hours.at(-1)).toMatchObject({ messages: 0, replies: 0 });
  });

  it("restarts through the dispatcher, records why once, and tells subscribers at once", async () => {
    const dashboard = open();
    const seen: DashboardSession[][] = [];
    dashboard.subscribe((sessions) => seen.push(sessions));
    const restarting = dashboard.restart(JOHN);
    // The fake control plane's restart bumps the count; the manager shows it on the next look.
    const restarted = await restarting;
    expect(restarted).toMatchObject({ chat_id: JOHN, restarts: 1, memory_bytes: null });
    expect(control.restarts).toEqual([JOHN]);
    expect(seen.at(-1)!.find((session) => session.chat_id === JOHN)!.restarts).toBe(1);

    set(JOHN, { restarts: 1 });
    clock.advance(3_000);
    expect(dashboard.health().recent_restarts).toEqual([
      {
        chat_id: JOHN,
        at: new Date(START + 1_000).toISOString(),
        reason: "requested from the dashboard",
      },
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
    const folder = path.join(root, ".claude", "projects", projectFolderName(cwd));
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
    set(JOHN, { pid: process.pid, state: "idle" }, {});
    const dashboard = open();
    for (let attempt = 0; attempt < 100; attempt += 1) {
      if (dashboard.getSession(JOHN)!.memory_bytes !== null) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(dashboard.getSession(JOHN)!.memory_bytes).toBeGreaterThan(1024 * 1024);
    expect(dashboard.listSessions()[0]!.memory_bytes).toBeGreaterThan(1024 * 1024);
  });
});
