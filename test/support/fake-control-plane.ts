import type { InboundMessage } from "../../src/channels/channel.js";
import type {
  ControlPlane,
  HealthView,
  NodeView,
  SessionView,
  StopResult,
  SubmitResult,
} from "../../src/channels/http/control-plane.js";
import { DispatchError } from "../../src/utils/errors.js";

type Method = keyof ControlPlane;

/** Async methods answer on a later tick and reject (not throw) like the daemon's would. */
const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A session view with plausible defaults; pass what the test cares about. */
export function sessionView(overrides: Partial<SessionView> & { chat_id: string }): SessionView {
  return {
    session_name: "john-doe",
    contact_name: "John Doe",
    tier: "favorite",
    session_id: "abc-123-def",
    state: "idle",
    created_at: "2026-02-01T10:00:00.000Z",
    last_message_time: "2026-02-07T14:30:00.000Z",
    chat_kind: "direct",
    channel: "http",
    turns: 3,
    errors: 0,
    restarts: 0,
    unanswered: 0,
    pid: null,
    total_cost_usd: null,
    previous_session_ids: [],
    node: "host-a:7878",
    ...overrides,
  };
}

/**
 * An in-memory control plane: records every call, keeps sessions in a map, answers each
 * submitted message with `reply(text)`, and throws whatever `failures` holds for a method.
 */
export class FakeControlPlane implements ControlPlane {
  readonly submits: { message: InboundMessage; options: { wait: boolean } }[] = [];
  readonly restarts: string[] = [];
  readonly stops: { chatId: string; forget: boolean }[] = [];
  readonly sessions = new Map<string, SessionView>();
  /** What `listNodes` answers. */
  nodes: NodeView[] = [];
  /** The next call of a method throws this (anything, not only errors), then it is cleared. */
  readonly failures = new Map<Method, unknown>();
  status: HealthView["status"] = "ok";
  metricsText = "# HELP dispatch_turns_total Turns\n# TYPE dispatch_turns_total counter\n";
  metricsContentType = "text/plain; version=0.0.4; charset=utf-8";
  /** When set, `submit` waits for this before answering (for in-flight requests). */
  gate: Promise<void> | undefined;
  private nextMessage = 1;

  constructor(private readonly reply: (text: string) => string | null = (text) => `re: ${text}`) {}

  addSession(overrides: Partial<SessionView> & { chat_id: string }): SessionView {
    const view = sessionView(overrides);
    this.sessions.set(view.chat_id, view);
    return view;
  }

  async submit(message: InboundMessage, options: { wait: boolean }): Promise<SubmitResult> {
    this.submits.push({ message, options });
    await nextTick();
    this.throwIfFailing("submit");
    if (this.gate) await this.gate;
    const result: SubmitResult = {
      chat_id: message.chatId,
      message_id: message.externalId ?? `msg-${this.nextMessage++}`,
      session_name: this.sessions.get(message.chatId)?.session_name ?? "new-chat",
      session_id: this.sessions.get(message.chatId)?.session_id ?? null,
    };
    return options.wait ? { ...result, reply: this.reply(message.text) } : result;
  }

  listSessions(): SessionView[] {
    this.throwIfFailing("listSessions");
    return [...this.sessions.values()];
  }

  getSession(chatId: string): SessionView | undefined {
    this.throwIfFailing("getSession");
    return this.sessions.get(chatId);
  }

  async restartSession(chatId: string): Promise<SessionView> {
    this.restarts.push(chatId);
    await nextTick();
    this.throwIfFailing("restartSession");
    const view = this.requireSession(chatId);
    const restarted = { ...view, state: "starting", restarts: view.restarts + 1 };
    this.sessions.set(chatId, restarted);
    return restarted;
  }

  async stopSession(chatId: string, options: { forget: boolean }): Promise<StopResult> {
    this.stops.push({ chatId, forget: options.forget });
    await nextTick();
    this.throwIfFailing("stopSession");
    const view = this.requireSession(chatId);
    if (!options.forget) {
      this.sessions.set(chatId, { ...view, state: "stopped" });
      return { archive: null };
    }
    this.sessions.delete(chatId);
    return { archive: `/archive/${view.session_name}` };
  }

  health(): HealthView {
    this.throwIfFailing("health");
    return {
      status: this.status,
      version: "0.1.0-test",
      uptime_seconds: 42,
      sessions: { registered: this.sessions.size, live: 0 },
    };
  }

  async listNodes(): Promise<NodeView[]> {
    await nextTick();
    this.throwIfFailing("listNodes");
    return this.nodes;
  }

  async metrics(): Promise<{ contentType: string; body: string }> {
    await nextTick();
    this.throwIfFailing("metrics");
    return { contentType: this.metricsContentType, body: this.metricsText };
  }

  private requireSession(chatId: string): SessionView {
    const view = this.sessions.get(chatId);
    if (!view) throw new DispatchError("not_found", `No session is registered for chat ${chatId}`);
    return view;
  }

  private throwIfFailing(method: Method): void {
    if (!this.failures.has(method)) return;
    const failure = this.failures.get(method);
    this.failures.delete(method);
    throw failure;
  }
}
