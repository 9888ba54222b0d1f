import type {
  ControlPlane,
  HealthView,
  NodeView,
  SessionView,
  StopResult,
} from "../channels/http/control-plane.js";
import type { Config } from "../config/schema.js";
import type { Clock } from "../utils/clock.js";
import { DispatchError } from "../utils/errors.js";
import type { ChatId, SessionName } from "../utils/ids.js";
import type { SessionManager, SessionStatus } from "../core/session-manager.js";
import type { Journal } from "../store/journal.js";
import type { Registry } from "../store/registry.js";
import { shuttingDownError } from "./inbox.js";
import { chatKeyOf, normaliseChatIdFor } from "./intake.js";
import type { Metrics } from "./metrics.js";

export interface SessionControlDeps {
  manager: SessionManager;
  registry: Registry;
  journal: Journal;
  config: Pick<Config, "defaultRegion">;
  metrics: Metrics;
  clock: Clock;
  version: string;
  /** Replies come from the offline stand-in model (`dispatch start --demo`); shown in health. */
  demo?: boolean;
  /** Whether the daemon is stopping (the inbox's `shuttingDown`): no restarts then. */
  shuttingDown(): boolean;
  /** The cluster's nodes and which one owns a session (`node-presence.ts`). */
  nodes: {
    /** This node's id. */
    self: string;
    ownerOf(sessionName: SessionName): string | null;
    listNodes(): Promise<NodeView[]>;
  };
}

/** The control plane without the way in: what the API and the dashboard do with sessions. */
export type SessionControl = Omit<ControlPlane, "submit">;

/**
 * The daemon's control plane: lists and shows sessions, restarts, stops and forgets them, and
 * reports health and metrics. Messages come in through the inbox (`inbox.ts`), not here.
 */
export function createSessionControl(deps: SessionControlDeps): SessionControl {
  const { manager, registry, metrics, clock } = deps;
  const startedAtMs = clock.now();
  const normalise = (chatId: string) => normaliseChatIdFor(chatId, deps.config);
  const toView = (status: SessionStatus): SessionView =>
    sessionView(status, deps.nodes.ownerOf(status.session_name));

  /**
   * Forget means forget: what a forgotten chat sent and was never answered is not replayed at the
   * next start into the conversation it starts when it writes again (issue 12). A kill between
   * the forget and this leaves those messages to be replayed: see docs/guarantees.md.
   */
  const rejectUnanswered = async (chatId: ChatId): Promise<void> => {
    const { journal } = deps;
    for (const row of await journal.pendingInbound()) {
      if (chatKeyOf(row.chatId, deps.config) !== chatId) continue;
      await journal.markRejected(
        row.id,
        "forgotten",
        `Chat ${chatId} was forgotten before this message was answered`,
      );
    }
  };

  /**
   * Counts only, never a walk of every registered chat: `/healthz` and `/metrics` are polled,
   * and at ten thousand chats building each one's status cost tens of milliseconds per call.
   * `live` is the pool's count of sessions holding a slot (a live agent process, or one starting).
   */
  const health = (): HealthView => ({
    status: deps.shuttingDown() ? "shutting_down" : "ok",
    version: deps.version,
    demo: deps.demo === true,
    uptime_seconds: Math.round((clock.now() - startedAtMs) / 1000),
    sessions: {
      registered: registry.size,
      live: manager.pool().live,
    },
  });

  /**
   * A session runs on one node of a cluster: another node's session is restarted, stopped or
   * forgotten there, never here (its agent, its queue and its files are there).
   */
  const refuseElsewhere = async (chatId: ChatId): Promise<void> => {
    const entry = registry.get(chatId);
    const owner = entry ? deps.nodes.ownerOf(entry.session_name) : null;
    if (owner === null || owner === deps.nodes.self) return;
    const address = (await deps.nodes.listNodes()).find((node) => node.node_id === owner)?.address;
    throw new DispatchError(
      "session_elsewhere",
      `The session of chat ${chatId} runs on node \`${owner}\`` +
        (address ? ` (${address})` : "") +
        ": restart, stop or forget it through that node's API (`dispatch status` there lists it)",
    );
  };

  return {
    listSessions: () => manager.list().map(toView),

    getSession(chatId) {
      const status = manager.status(normalise(chatId));
      return status ? toView(status) : undefined;
    },

    async restartSession(chatId) {
      const id = normalise(chatId);
      if (deps.shuttingDown()) throw shuttingDownError();
      await refuseElsewhere(id);
      await manager.restart(id);
      return toView(manager.status(id)!);
    },

    async stopSession(chatId, options): Promise<StopResult> {
      const id = normalise(chatId);
      if (!registry.get(id)) throw notFound(id);
      await refuseElsewhere(id);
      if (options.forget) {
        // A person's session is forgotten whole: every handle of it starts afresh.
        const chats = manager.chatsOfSession(id);
        const archive = (await manager.forget(id)) ?? null;
        for (const chat of chats) await rejectUnanswered(chat);
        return { archive };
      }
      await manager.stop(id);
      return { archive: null };
    },

    health,

    listNodes: () => deps.nodes.listNodes(),

    async metrics() {
      const current = health();
      metrics.sessionsLive.set(current.sessions.live);
      metrics.sessionsRegistered.set(current.sessions.registered);
      const pool = manager.pool();
      metrics.poolBound.set(pool.bound);
      metrics.poolWaiting.set(pool.waiting);
      metrics.poolEvictions.set(pool.evictions);
      metrics.messagesQueued.set(manager.unansweredCount());
      return { contentType: metrics.registry.contentType, body: await metrics.registry.metrics() };
    },
  };
}

function notFound(chatId: ChatId): DispatchError {
  return new DispatchError(
    "not_found",
    `No session is registered for chat ${chatId}; \`dispatch status\` lists them`,
  );
}

function sessionView(status: SessionStatus, node: string | null): SessionView {
  return {
    chat_id: status.chat_id,
    session_name: status.session_name,
    contact_name: status.contact_name,
    tier: status.tier,
    session_id: status.session_id,
    state: status.state,
    created_at: status.created_at,
    last_message_time: status.last_message_time,
    chat_kind: status.chat_kind,
    channel: status.channel,
    turns: status.turns,
    errors: status.errors,
    restarts: status.restarts,
    unanswered: status.queued,
    pid: status.live?.pid ?? null,
    total_cost_usd: status.live?.totalCostUsd ?? null,
    previous_session_ids: status.previous_session_ids,
    node,
  };
}
