import type {
  DashboardAbout,
  DashboardSession,
  DashboardSource,
  HealthSnapshot,
  SessionListener,
  TranscriptTurn,
} from "../../../src/dashboard/dashboard-source.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { sessionView } from "../../support/fake-control-plane.js";

export function dashboardSession(
  overrides: Partial<DashboardSession> & { chat_id: string },
): DashboardSession {
  return {
    ...sessionView(overrides),
    memory_bytes: null,
    cost_so_far_usd: null,
    cost_unknown_turns: 0,
    ...overrides,
  };
}

/** A dashboard source in memory: records calls, and lets a test change sessions and end streams. */
export class FakeDashboardSource implements DashboardSource {
  readonly sessions = new Map<string, DashboardSession>();
  readonly transcripts = new Map<string, TranscriptTurn[]>();
  readonly calls: string[] = [];
  readonly listeners = new Map<SessionListener, (() => void) | undefined>();
  /** The next action throws this, then it is cleared. */
  failure: Error | undefined;
  demo = false;

  constructor(private readonly reply: (text: string) => string | null = (text) => `re: ${text}`) {}

  add(overrides: Partial<DashboardSession> & { chat_id: string }): DashboardSession {
    const session = dashboardSession(overrides);
    this.sessions.set(session.chat_id, session);
    return session;
  }

  /** Changes a session and tells subscribers, as the daemon does. */
  change(overrides: Partial<DashboardSession> & { chat_id: string }): void {
    this.add({ ...this.sessions.get(overrides.chat_id), ...overrides });
    for (const listener of this.listeners.keys()) listener(this.listSessions());
  }

  end(): void {
    const ends = [...this.listeners.values()];
    this.listeners.clear();
    for (const end of ends) end?.();
  }

  about(): DashboardAbout {
    return { version: "0.1.0-test", demo: this.demo, registry_fields: ["session_name", "tier"] };
  }

  listSessions(): DashboardSession[] {
    return [...this.sessions.values()];
  }

  getSession(chatId: string): DashboardSession | undefined {
    return this.sessions.get(chatId);
  }

  transcript(chatId: string): Promise<TranscriptTurn[]> {
    this.calls.push(`transcript ${chatId}`);
    return Promise.resolve(this.transcripts.get(chatId) ?? []);
  }

  health(): HealthSnapshot {
    return {
      generated_at: "2026-03-01T12:00:00.000Z",
      status: "ok",
      version: "0.1.0-test",
      uptime_seconds: 42,
      queues: [],
      sessions: {
        registered: this.sessions.size,
        live: 0,
        bound: null,
        waiting: null,
        evictions: null,
      },
      spares: { configured: 1, ready: null },
      hours: [],
      latency_buckets: [],
      recent_errors: [],
      recent_restarts: [],
    };
  }

  subscribe(listener: SessionListener, onEnd?: () => void): () => void {
    this.listeners.set(listener, onEnd);
    return () => this.listeners.delete(listener);
  }

  async restart(chatId: string): Promise<DashboardSession> {
    await this.act(`restart ${chatId}`);
    const session = this.require(chatId);
    return this.add({ ...session, state: "starting", restarts: session.restarts + 1 });
  }

  async stop(chatId: string): Promise<void> {
    await this.act(`stop ${chatId}`);
    this.add({ ...this.require(chatId), state: "stopped" });
  }

  async forget(chatId: string): Promise<void> {
    await this.act(`forget ${chatId}`);
    this.require(chatId);
    this.sessions.delete(chatId);
  }

  async send(chatId: string, text: string): Promise<string | null> {
    await this.act(`send ${chatId} ${text}`);
    return this.reply(text);
  }

  private async act(call: string): Promise<void> {
    this.calls.push(call);
    await new Promise((resolve) => setImmediate(resolve));
    if (this.failure !== undefined) {
      const failure = this.failure;
      this.failure = undefined;
      throw failure;
    }
  }

  private require(chatId: string): DashboardSession {
    const session = this.sessions.get(chatId);
    if (!session)
      throw new DispatchError("not_found", `No session is registered for chat ${chatId}`);
    return session;
  }
}
