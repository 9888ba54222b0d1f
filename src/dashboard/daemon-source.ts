/**
 * The daemon's side of the dashboard port, built from the public methods of the dispatcher and
 * the session manager. Neither tells anyone when a session changes, so this source looks at the
 * sessions every `pollIntervalMs` (and right after each action it takes): when the list differs
 * from the last look, subscribers get it; what happened in between feeds the activity log (see
 * `activity-inference.ts`) unless the daemon feeds the log itself (`inferActivity: false`).
 */
import path from "node:path";
import type { InboundMessage } from "../channels/channel.js";
import type { ControlPlane, SessionView } from "../channels/http/control-plane.js";
import { systemClock, type Clock } from "../core/clock.js";
import { describeError } from "../core/errors.js";
import type { SessionStatus } from "../core/session-manager.js";
import type { Logger } from "../logging/logger.js";
import { inferActivity, type ActivitySample } from "./activity-inference.js";
import type { ActivityLog } from "./activity-log.js";
import type {
  DashboardSession,
  DashboardSource,
  HealthSnapshot,
  QueueDepth,
  SessionListener,
} from "./dashboard-source.js";
import { readProcessMemory } from "./process-memory.js";
import { parseTranscript, type TranscriptTurn } from "./transcript.js";
import { readTranscriptFile } from "./transcript-file.js";

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
  manager: { list(): SessionStatus[]; pool?(): PoolLike };
  activity: ActivityLog;
  /** Where the session folders are (`transcriptsDir` in config): a session's cwd is in it. */
  transcriptsDir: string;
  /** The Claude CLI's config folder (`~/.claude`, or `CLAUDE_CONFIG_DIR`), where transcripts are. */
  claudeDir: string;
  logger: Logger;
  clock?: Clock;
  /** `spareProcesses` from config, shown on the Health view. */
  spareProcesses?: number;
  /** Default 1000. */
  pollIntervalMs?: number;
  /** How often process memory is read again. Default 5000. */
  memoryIntervalMs?: number;
  /** Default true: derive messages, replies, errors and restarts from what each look shows. */
  inferActivity?: boolean;
}

export interface DaemonDashboardSource extends DashboardSource {
  /** Looks at the sessions now: notifies subscribers and records activity if anything changed. */
  refresh(): void;
  /** Stops looking. */
  close(): void;
}

const MIB = 1024 * 1024;
const REASON_TTL_MS = 60_000;

export function createDaemonDashboardSource(
  deps: DaemonDashboardSourceDeps,
): DaemonDashboardSource {
  const { dispatcher, manager, activity, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const infer = deps.inferActivity ?? true;
  const listeners = new Map<SessionListener, (() => void) | undefined>();
  /** Resident memory by pid, refreshed every `memoryIntervalMs`. */
  let memory = new Map<number, number>();
  let samples: Map<string, ActivitySample> | undefined;
  let fingerprint = "";
  /** Why a chat is being restarted, when this source asked for it. */
  const restartReasons = new Map<string, { reason: string; atMs: number }>();
  let closed = false;
  let lastFailure: string | undefined;

  const withMemory = (view: SessionView): DashboardSession => ({
    ...view,
    memory_bytes: view.pid === null ? null : (memory.get(view.pid) ?? null),
  });
  const listSessions = () => dispatcher.listSessions().map(withMemory);

  const refresh = () => {
    if (closed) return;
    try {
      if (dispatcher.health().status === "shutting_down") {
        close();
        return;
      }
      const nowMs = clock.now();
      const current = manager.list().map(toSample);
      if (infer && samples !== undefined) {
        const reasons = new Map([...restartReasons].map(([chatId, why]) => [chatId, why.reason]));
        for (const event of inferActivity(samples, current, nowMs, reasons)) {
          record(event);
          if (event.type === "restart") restartReasons.delete(event.chatId);
        }
      }
      // A reason waits for its restart to show (the old agent may take a while to stop), not forever.
      for (const [chatId, why] of restartReasons) {
        if (nowMs - why.atMs > REASON_TTL_MS) restartReasons.delete(chatId);
      }
      samples = new Map(current.map((sample) => [sample.chatId, sample]));

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
          logger.warn("dashboard listener failed", { cause: describeError(error) });
        }
      }
    } catch (error) {
      // Once per distinct failure, not once a second.
      const cause = describeError(error);
      if (cause !== lastFailure) logger.warn("dashboard refresh failed", { cause });
      lastFailure = cause;
    }
  };

  const record = (event: ReturnType<typeof inferActivity>[number]) => {
    switch (event.type) {
      case "message":
        activity.recordMessage(event.chatId, event.atMs);
        return;
      case "reply":
        activity.recordReply(event.chatId, event.atMs, event.latencyMs);
        return;
      case "error":
        activity.recordError(event.chatId, event.atMs, event.code, event.message);
        return;
      case "restart":
        activity.recordRestart(event.chatId, event.atMs, event.reason);
        return;
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
        logger.warn("dashboard memory read failed", { cause: describeError(error) }),
      )
      .finally(() => (readingMemory = false));
  };

  /** Stops looking and tells every subscriber that no more changes will come. */
  const close = () => {
    if (closed) return;
    closed = true;
    cancelPoll();
    cancelMemory();
    const ends = [...listeners.values()];
    listeners.clear();
    for (const end of ends) end?.();
  };

  const cancelPoll = clock.every(deps.pollIntervalMs ?? 1_000, refresh);
  const cancelMemory = clock.every(deps.memoryIntervalMs ?? 5_000, refreshMemory);
  refresh();
  refreshMemory();

  const getSession = (chatId: string) => {
    const view = dispatcher.getSession(chatId);
    return view === undefined ? undefined : withMemory(view);
  };

  return {
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
      return text === undefined ? [] : parseTranscript(text);
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
        spares: { configured: deps.spareProcesses ?? null, ready: null },
        ...activity.snapshot(nowMs),
      };
    },

    subscribe(listener, onEnd) {
      if (closed) {
        onEnd?.();
        return () => {};
      }
      listeners.set(listener, onEnd);
      return () => listeners.delete(listener);
    },

    async restart(chatId) {
      const view = dispatcher.getSession(chatId);
      if (view) {
        restartReasons.set(view.chat_id, {
          reason: "requested from the dashboard",
          atMs: clock.now(),
        });
      }
      try {
        const restarted = await dispatcher.restartSession(chatId);
        return withMemory(restarted);
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

function toSample(status: SessionStatus): ActivitySample {
  const lastMessageMs =
    status.last_message_time === null ? Number.NaN : Date.parse(status.last_message_time);
  return {
    chatId: status.chat_id,
    state: status.state,
    turns: status.turns,
    errors: status.errors,
    restarts: status.restarts,
    queued: status.queued,
    lastMessageMs: Number.isNaN(lastMessageMs) ? null : lastMessageMs,
    busySinceMs: status.live?.busySinceMs ?? null,
    lastActivityMs: status.live?.lastActivityMs ?? null,
  };
}
