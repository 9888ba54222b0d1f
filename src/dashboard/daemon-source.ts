/**
 * The daemon's side of the dashboard port, built from the public methods of the dispatcher and
 * the session manager. Neither tells anyone when a session's figures change, so while a page is
 * subscribed this source looks at the sessions every `pollIntervalMs` (and right after each action
 * it takes): when the list differs from the last look, subscribers get it. The Health view's activity is fed by the
 * daemon's own events (`activity-feed.ts`); costs come from the journal (`daemon/turn-costs.ts`).
 */
import path from "node:path";
import type { InboundMessage } from "../channels/channel.js";
import type { ControlPlane, SessionView } from "../channels/http/control-plane.js";
import { systemClock, type Clock } from "../utils/clock.js";
import { describeError } from "../utils/errors.js";
import type { Logger } from "../logging/logger.js";
import type { TurnRecord } from "../store/journal.js";
import { REGISTRY_FIELDS } from "../store/registry-file-format.js";
import type { ActivityFeed } from "./activity-feed.js";
import type {
  DashboardSession,
  DashboardSource,
  HealthSnapshot,
  QueueDepth,
  SessionListener,
} from "./dashboard-source.js";
import { readProcessMemory } from "./process-memory.js";
import { parseTranscript, parseTranscriptEntries, type TranscriptTurn } from "./transcript.js";
import { withRecordedCosts } from "./transcript-costs.js";
import { readTranscriptFile } from "../agent/claude-cli-layout.js";

/** The session manager's pool, when it has one (`SessionManager.pool()`). */
export interface PoolLike {
  live: number;
  bound: number;
  waiting: number;
  evictions: number;
}

export interface DaemonDashboardSourceDeps {
  dispatcher: Pick<
    ControlPlane,
    "listSessions" | "getSession" | "restartSession" | "stopSession" | "submit" | "health"
  >;
  manager: { pool?(): PoolLike };
  /** The Health view's activity, fed by the daemon's events. */
  activity: Pick<ActivityFeed, "snapshot" | "expectRestart">;
  /** Recorded turn costs (`createTurnCosts`); without them costs show as unknown. */
  costs?: CostsLike;
  /** Where the session folders are (`transcriptsDir` in config): a session's cwd is in it. */
  transcriptsDir: string;
  /** The Claude CLI's config folder (`~/.claude`, or `CLAUDE_CONFIG_DIR`), where transcripts are. */
  claudeDir: string;
  /**
   * The transcript mirror in the state database (`store/transcript-store.ts`). A resumed session
   * writes only there and to a temporary folder: the SDK resumes from the mirror by copying it to
   * `/tmp/claude-resume-*` and pointing the CLI there, so the file in `claudeDir` stops growing.
   */
  transcriptMirror?: { recentEntries(sessionId: string, limit: number): Promise<unknown[]> };
  logger: Logger;
  clock?: Clock;
  /** Whether the daemon runs against the stand-in model (`--demo`). Default false. */
  demo?: boolean;
  /** `spareProcesses` from config, shown on the Health view. */
  spareProcesses?: number;
  /** Spare processes parked and ready now (the agent's `sparesReady`). */
  sparesReady?: () => number;
  /** Default 1000. */
  pollIntervalMs?: number;
  /** How often process memory is read again. Default 5000. */
  memoryIntervalMs?: number;
  /** Recorded turns read to put costs on a transcript. Default 1000. */
  maxCostRecords?: number;
}

/** What this source reads of `daemon/turn-costs.ts`. */
export interface CostsLike {
  costOf(sessionIds: readonly string[]): { costUsd: number; turns: number; unknownTurns: number };
  recentTurns(
    chatId: string,
    limit: number,
  ): Promise<Pick<TurnRecord, "messageUuids" | "costUsd">[]>;
}

export interface DaemonDashboardSource extends DashboardSource {
  /** Looks at the sessions now: notifies subscribers when anything changed. */
  refresh(): void;
  /** Stops looking. */
  close(): void;
}

const MIB = 1024 * 1024;
/** Mirror entries read for a transcript: far more than the 500 turns the page shows. */
const MAX_MIRROR_ENTRIES = 20_000;

export function createDaemonDashboardSource(
  deps: DaemonDashboardSourceDeps,
): DaemonDashboardSource {
  const { dispatcher, manager, activity, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const listeners = new Map<SessionListener, (() => void) | undefined>();
  /** Resident memory by pid, refreshed every `memoryIntervalMs`. */
  let memory = new Map<number, number>();
  let fingerprint = "";
  let closed = false;
  let lastFailure: string | undefined;

  const costSoFar = (view: SessionView) => {
    const sessionIds = [
      ...(view.session_id === null ? [] : [view.session_id]),
      ...view.previous_session_ids.map((previous) => previous.session_id),
    ];
    const cost = deps.costs?.costOf(sessionIds);
    return !cost || cost.turns === 0
      ? { cost_so_far_usd: null, cost_unknown_turns: 0 }
      : { cost_so_far_usd: cost.costUsd, cost_unknown_turns: cost.unknownTurns };
  };
  const toDashboard = (view: SessionView): DashboardSession => ({
    ...view,
    memory_bytes: view.pid === null ? null : (memory.get(view.pid) ?? null),
    ...costSoFar(view),
  });
  const listSessions = () => dispatcher.listSessions().map(toDashboard);

  const refresh = () => {
    if (closed) return;
    try {
      if (dispatcher.health().status === "shutting_down") {
        close();
        return;
      }
      const sessions = listSessions();
      lastFailure = undefined;
      const next = JSON.stringify(sessions, (key, value: unknown) =>
        key === "memory_bytes" && typeof value === "number" ? Math.round(value / MIB) : value,
      );
      if (next === fingerprint) return;
      fingerprint = next;
      for (const listener of listeners.keys()) {
        try {
          listener(sessions);
        } catch (error) {
          logger.warn("dashboard-listener-failed", { cause: describeError(error) });
        }
      }
    } catch (error) {
      // Once per distinct failure, not once a second.
      const cause = describeError(error);
      if (cause !== lastFailure) logger.warn("dashboard-refresh-failed", { cause });
      lastFailure = cause;
    }
  };

  const readMemory = async () => {
    const pids = dispatcher.listSessions().flatMap((view) => (view.pid === null ? [] : [view.pid]));
    const next = new Map<number, number>();
    await Promise.all(
      pids.map(async (pid) => {
        const bytes = await readProcessMemory(pid);
        if (bytes !== null) next.set(pid, bytes);
      }),
    );
    memory = next;
  };
  let readingMemory = false;
  const refreshMemory = () => {
    if (readingMemory || closed) return;
    readingMemory = true;
    readMemory()
      .then(refresh)
      .catch((error: unknown) =>
        logger.warn("dashboard-memory-read-failed", { cause: describeError(error) }),
      )
      .finally(() => (readingMemory = false));
  };

  // Looking walks every registered chat, so it runs only while a page is subscribed: a daemon
  // with 10,000 contacts and no dashboard open does no per-second work for it.
  let stopLooking: (() => void) | undefined;
  const startLooking = () => {
    if (stopLooking || closed) return;
    const cancelPoll = clock.every(deps.pollIntervalMs ?? 1_000, refresh);
    const cancelMemory = clock.every(deps.memoryIntervalMs ?? 5_000, refreshMemory);
    stopLooking = () => {
      cancelPoll();
      cancelMemory();
      stopLooking = undefined;
    };
    refresh(); // the baseline later looks compare with
    refreshMemory();
  };

  /** Stops looking and tells every subscriber that no more changes will come. */
  const close = () => {
    if (closed) return;
    closed = true;
    stopLooking?.();
    const ends = [...listeners.values()];
    listeners.clear();
    for (const end of ends) end?.();
  };

  const getSession = (chatId: string) => {
    const view = dispatcher.getSession(chatId);
    return view === undefined ? undefined : toDashboard(view);
  };

  return {
    about: () => ({
      version: dispatcher.health().version,
      demo: deps.demo ?? false,
      registry_fields: REGISTRY_FIELDS,
    }),
    listSessions,
    getSession,

    async transcript(chatId): Promise<TranscriptTurn[]> {
      const view = dispatcher.getSession(chatId);
      if (!view || view.session_id === null) return [];
      const text = await readTranscriptFile({
        claudeDir: deps.claudeDir,
        cwd: path.join(path.resolve(deps.transcriptsDir), view.session_name),
        sessionId: view.session_id,
      });
      const fromFile = text === undefined ? [] : parseTranscript(text);
      const mirrored = await deps.transcriptMirror?.recentEntries(
        view.session_id,
        MAX_MIRROR_ENTRIES,
      );
      const turns = newer(fromFile, mirrored ? parseTranscriptEntries(mirrored) : []);
      const records =
        (await deps.costs?.recentTurns(view.chat_id, deps.maxCostRecords ?? 1_000)) ?? [];
      return withRecordedCosts(turns, records);
    },

    health(): HealthSnapshot {
      const nowMs = clock.now();
      const daemon = dispatcher.health();
      const views = dispatcher.listSessions();
      const pool = manager.pool?.();
      const queues: QueueDepth[] = views
        .filter((view) => view.unanswered > 0)
        .sort((a, b) => b.unanswered - a.unanswered || a.chat_id.localeCompare(b.chat_id))
        .map((view) => ({
          chat_id: view.chat_id,
          session_name: view.session_name,
          contact_name: view.contact_name,
          state: view.state,
          unanswered: view.unanswered,
        }));
      return {
        generated_at: new Date(nowMs).toISOString(),
        status: daemon.status,
        version: daemon.version,
        uptime_seconds: daemon.uptime_seconds,
        queues,
        sessions: {
          registered: daemon.sessions.registered,
          live: daemon.sessions.live,
          bound: pool && Number.isFinite(pool.bound) ? pool.bound : null,
          waiting: pool?.waiting ?? null,
          evictions: pool?.evictions ?? null,
        },
        spares: { configured: deps.spareProcesses ?? null, ready: deps.sparesReady?.() ?? null },
        ...activity.snapshot(nowMs),
      };
    },

    subscribe(listener, onEnd) {
      if (closed) {
        onEnd?.();
        return () => {};
      }
      startLooking();
      listeners.set(listener, onEnd);
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) stopLooking?.();
      };
    },

    async restart(chatId) {
      const view = dispatcher.getSession(chatId);
      // The page offers a stopped session Start: the same restart, named for what it did.
      if (view) {
        activity.expectRestart(
          view.chat_id,
          view.state === "stopped" ? "started from the dashboard" : "requested from the dashboard",
        );
      }
      try {
        const restarted = await dispatcher.restartSession(chatId);
        return toDashboard(restarted);
      } finally {
        refresh();
      }
    },

    async stop(chatId) {
      try {
        await dispatcher.stopSession(chatId, { forget: false });
      } finally {
        refresh();
      }
    },

    async forget(chatId) {
      try {
        await dispatcher.stopSession(chatId, { forget: true });
      } finally {
        refresh();
      }
    },

    async send(chatId, text) {
      const message: InboundMessage = {
        // As over the HTTP API: the reply comes back here and is not sent to the contact.
        channel: "http",
        chatId,
        text,
        receivedAt: new Date(clock.now()),
      };
      try {
        const result = await dispatcher.submit(message, { wait: true });
        return result.reply ?? null;
      } finally {
        refresh();
      }
    },

    refresh,

    close,
  };
}

/**
 * The more up-to-date of two readings of one transcript: the one that reaches later, then the
 * one with more turns. The file stops at a resume; the mirror is written in batches and may lag.
 */
function newer(first: TranscriptTurn[], second: TranscriptTurn[]): TranscriptTurn[] {
  const reach = (turns: TranscriptTurn[]) => turns.at(-1)?.ended_at ?? "";
  if (reach(first) !== reach(second)) return reach(first) > reach(second) ? first : second;
  return second.length > first.length ? second : first;
}
