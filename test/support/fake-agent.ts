import { AgentError } from "../../src/agent/agent-error.js";
import type {
  AgentConversation,
  AgentEvent,
  AgentInput,
  AgentPort,
  AgentStartOptions,
  TurnLimit,
} from "../../src/agent/port.js";
import { AsyncQueue } from "../../src/agent/async-queue.js";

export interface FakeConversation extends AgentConversation {
  options: AgentStartOptions;
  inputs: AgentInput[];
  /** Simulates the agent process dying (the event stream throws). */
  crash(message?: string): void;
  /** Simulates the process being gone without the stream noticing yet. */
  markDead(): void;
  /** Simulates the CLI compacting its context (the SDK's `compact_boundary`). */
  compact(): void;
  closed: boolean;
  interrupts: number;
}

/**
 * An in-memory agent: every conversation remembers what was pushed into it, answers each input
 * with `reply(text, history)` on the next tick, and knows only the session ids it has started.
 */
export class FakeAgent implements AgentPort {
  readonly conversations: FakeConversation[] = [];
  readonly knownSessionIds = new Set<string>();
  readonly histories = new Map<string, string[]>();
  /** Inputs pushed while this is false wait until `release()`. */
  autoReply = true;
  /**
   * When set, a resumed conversation reports this many messages as what it came back with
   * (`AgentConversation.resumed`), a tick after it starts.
   */
  resumedMessages: ((sessionId: string) => number) | undefined;
  private nextPid = 1000;

  constructor(
    private readonly reply: (
      text: string,
      history: readonly string[],
    ) => { text: string; isError?: boolean; limit?: TurnLimit } = (text, history) => ({
      text: `reply ${history.length}: ${text}`,
    }),
  ) {}

  start(options: AgentStartOptions): FakeConversation {
    const events = new AsyncQueue<AgentEvent | Error>();
    const pending: AgentInput[] = [];
    const sessionId = options.sessionId;
    let alive = true;
    const pid = this.nextPid++;

    if (options.resume && !this.knownSessionIds.has(sessionId)) {
      queueMicrotask(() => {
        events.push(
          new AgentError(
            "agent_session_not_found",
            "No conversation found with session ID: " + sessionId,
          ),
        );
      });
    } else if (!options.resume && this.knownSessionIds.has(sessionId)) {
      throw new Error(`Session ID ${sessionId} is already in use`);
    }
    this.knownSessionIds.add(sessionId);
    const history = this.histories.get(sessionId) ?? [];
    this.histories.set(sessionId, history);

    const answer = (input: AgentInput) => {
      history.push(input.text);
      const result = this.reply(input.text, history);
      // As the CLI does: a turn stopped by a limit is an error result.
      const isError = (result.isError ?? false) || result.limit !== undefined;
      events.push({ type: "text", text: result.text });
      events.push({
        type: "turn-end",
        sessionId,
        inputIds: [input.id],
        isError,
        ...(isError ? { errorText: result.text } : {}),
        ...(result.limit ? { limit: result.limit } : {}),
        totalCostUsd: 0,
        durationMs: 1,
      });
    };

    let initSent = false;
    const resumedMessages = this.resumedMessages;
    const conversation: FakeConversation = {
      options,
      ...(options.resume && resumedMessages
        ? {
            resumed: new Promise<{ messages: number }>((resolve) =>
              setImmediate(() => resolve({ messages: resumedMessages(sessionId) })),
            ),
          }
        : {}),
      inputs: [],
      closed: false,
      pid,
      events: (async function* () {
        for await (const item of events) {
          if (item instanceof Error) throw item;
          yield item;
        }
      })(),
      push: (input) => {
        // As the CLI does: an input whose id this conversation has seen is ignored.
        const repeated = conversation.inputs.some((earlier) => earlier.id === input.id);
        conversation.inputs.push(input);
        if (repeated) return;
        if (!initSent) {
          initSent = true;
          events.push({ type: "init", sessionId });
        }
        pending.push(input);
        if (this.autoReply) setImmediate(() => this.flush(conversation));
      },
      isAlive: () => alive,
      interrupt: () => {
        conversation.interrupts += 1;
        return Promise.resolve();
      },
      interrupts: 0,
      close: () => {
        alive = false;
        conversation.closed = true;
        if (!events.isEnded) events.end();
        return Promise.resolve();
      },
      crash: (message = "process exited with code 1") => {
        alive = false;
        events.push(new AgentError("agent_process_failed", message));
      },
      markDead: () => {
        alive = false;
      },
      compact: () => {
        events.push({ type: "compact" });
      },
    };
    this.pendingByConversation.set(conversation, { pending, answer });
    this.conversations.push(conversation);
    return conversation;
  }

  private readonly pendingByConversation = new Map<
    FakeConversation,
    { pending: AgentInput[]; answer: (input: AgentInput) => void }
  >();

  /** Answers every input waiting in `conversation` (or in all of them). */
  flush(conversation?: FakeConversation): void {
    const targets = conversation ? [conversation] : this.conversations;
    for (const target of targets) {
      const state = this.pendingByConversation.get(target);
      if (!state || target.closed || !target.isAlive()) continue;
      for (const input of state.pending.splice(0)) state.answer(input);
    }
  }

  get last(): FakeConversation {
    const conversation = this.conversations.at(-1);
    if (!conversation) throw new Error("no conversation started");
    return conversation;
  }
}
