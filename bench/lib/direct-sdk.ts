/**
 * The same agent turns dispatch runs, driven straight through the Claude Agent SDK: one
 * long-lived `query()` in streaming-input mode, with the options dispatch gives a `favorite`
 * contact's agent (tools, folder-confined rules, system prompt, the in-process send_message
 * tool). The difference between the two paths is then what dispatch itself adds.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import os from "node:os";
import {
  createSdkMcpServer,
  InMemorySessionStore,
  prewarm,
  query,
  tool,
  type Options,
  type Query,
  type SDKMessage,
  type SDKUserMessage,
  type SpawnOptions,
} from "@anthropic-ai/claude-agent-sdk";
import { z } from "zod";
import { agentChildEnv } from "../../src/agent/child-env.js";
import { confineFileTools } from "../../src/agent/tool-rules.js";
import { createConfigSchema } from "../../src/config/schema.js";
import { createTierPolicy } from "../../src/daemon/tier-policy.js";
import { WRAPPING_SYSTEM_PROMPT } from "../../src/identity/wrap-message.js";

export const BENCH_TIER = "favorite";

/** Every CLI process the direct paths started, so a failed run can end them by pid. */
const started = new Set<ChildProcess>();

export function killDirectProcesses(): void {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, "SIGKILL");
    }
  }
  started.clear();
}

/** A queue the SDK reads its streaming input from. */
class InputQueue implements AsyncIterable<SDKUserMessage> {
  private readonly items: SDKUserMessage[] = [];
  private wake: (() => void) | undefined;
  private ended = false;

  push(text: string): void {
    this.items.push({
      type: "user",
      message: { role: "user", content: text },
      parent_tool_use_id: null,
      uuid: randomUUID(),
      client_composed: true,
    });
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SDKUserMessage> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

export interface DirectSdkContext {
  modelUrl: string;
  /** HOME of the CLI children (their transcripts go under it). */
  home: string;
  /**
   * Mirror the transcript into the SDK's own in-memory `sessionStore`, as dispatch mirrors it
   * into its journal: the CLI then sends each turn's entries and the SDK waits for the store
   * before it yields the turn's `result`. What that costs is the SDK's, not dispatch's code.
   */
  mirror?: boolean;
  /**
   * Leave dispatch's part on reading its envelopes out of the system prompt: the texts go bare,
   * so the conversation costs what it would without dispatch's wrapping (the envelope scenario).
   */
  withoutEnvelopePrompt?: boolean;
}

/** The agent policy dispatch's default config gives a chat of `BENCH_TIER`. */
function benchPolicy(home: string) {
  const config = createConfigSchema({
    homeDir: home,
    platform: process.platform,
    totalMemoryBytes: os.totalmem(),
  }).parse({});
  return createTierPolicy(config)(BENCH_TIER, "individual");
}

/** The options dispatch's SDK adapter builds for a chat of `BENCH_TIER` in folder `cwd`. */
export function dispatchLikeOptions(
  context: DirectSdkContext,
  cwd: string,
  track: (child: ChildProcess) => void,
): Options {
  const policy = benchPolicy(context.home);
  const append = context.withoutEnvelopePrompt
    ? policy.systemPromptAppend
        ?.split("\n\n")
        .filter((part) => part !== WRAPPING_SYSTEM_PROMPT)
        .join("\n\n")
    : policy.systemPromptAppend;
  const env = agentChildEnv({
    PATH: process.env.PATH,
    HOME: context.home,
    ANTHROPIC_BASE_URL: context.modelUrl,
    ANTHROPIC_API_KEY: "bench-stand-in",
  });
  return {
    cwd,
    env,
    spawnClaudeCodeProcess: (options: SpawnOptions) => {
      const child = spawn(options.command, options.args, {
        cwd: options.cwd,
        env: options.env,
        stdio: ["pipe", "pipe", "ignore"],
      });
      options.signal.addEventListener("abort", () => child.kill("SIGTERM"));
      started.add(child);
      child.once("exit", () => started.delete(child));
      track(child);
      return child;
    },
    permissionMode: policy.permissionMode,
    tools: [
      ...new Set(
        policy.allowedTools
          .filter((name) => !name.startsWith("mcp__"))
          .map((name) => name.replace(/\(.*\)$/, "")),
      ),
    ],
    allowedTools: confineFileTools(policy.allowedTools, cwd),
    disallowedTools: [...policy.disallowedTools],
    verbatimPrompts: true,
    settingSources: [],
    settings: { cleanupPeriodDays: 36_500 },
    systemPrompt: {
      type: "preset",
      preset: "claude_code",
      ...(append ? { append } : {}),
    },
    mcpServers: {
      dispatch: createSdkMcpServer({
        name: "dispatch",
        version: "1.0.0",
        tools: [
          tool("send_message", "Send a message to the chat now.", { text: z.string() }, () =>
            Promise.resolve({ content: [{ type: "text", text: "Sent." }] }),
          ),
        ],
      }),
    },
  };
}

/** One turn's times, from `Date.now()` (comparable with the stand-in's `at`) and a precise clock. */
export interface DirectTurn {
  pushedAt: number;
  /** performance.now() milliseconds from push to the turn's `result`. */
  elapsedMs: number;
  text: string;
  isError: boolean;
}

export interface DirectConversation {
  /** Pushes a message and resolves when the turn that answers it ends. */
  send(text: string): Promise<DirectTurn>;
  sessionId: string;
  /** pids of the CLI processes this conversation started. */
  pids(): number[];
  close(): Promise<void>;
}

/** A streaming-input conversation: a new session, or the resume of an earlier one. */
export function openDirectConversation(
  context: DirectSdkContext,
  cwd: string,
  how: { kind: "plain" } | { kind: "resume"; sessionId: string } = { kind: "plain" },
): DirectConversation {
  const children: ChildProcess[] = [];
  const options = dispatchLikeOptions(context, cwd, (child) => children.push(child));
  if (context.mirror) options.sessionStore = new InMemorySessionStore();
  const sessionId = how.kind === "resume" ? how.sessionId : randomUUID();
  const input = new InputQueue();
  const conversation = query({
    prompt: input,
    options: {
      ...options,
      ...(how.kind === "resume" ? { resume: sessionId } : { sessionId }),
    },
  });
  return driveConversation(conversation, input, sessionId, children);
}

export interface DirectSpare {
  /** pids of the parked process. */
  pids(): number[];
  /** Claims the spare for a new conversation in `cwd`; the first `send` is its first message. */
  claim(cwd: string): DirectConversation;
  close(): Promise<void>;
}

/**
 * Starts a spare with the SDK's `prewarm()` and resolves once it is parked and ready. As
 * dispatch does: the tools, MCP server and system prompt preset are fixed at prewarm; the claim
 * brings the folder, permission mode, prompt append and the folder-confined allow rules (a
 * settings overlay, which costs the claim one round trip).
 */
export async function prewarmDirectSpare(context: DirectSdkContext): Promise<DirectSpare> {
  const children: ChildProcess[] = [];
  const options = dispatchLikeOptions(context, context.home, (child) => children.push(child));
  const {
    cwd: _parkingFolder,
    allowedTools: _rulesComeWithTheClaim,
    systemPrompt,
    ...hostOptions
  } = options;
  const append =
    typeof systemPrompt === "object" && "append" in systemPrompt ? systemPrompt.append : undefined;
  const spare = await prewarm({
    options: { ...hostOptions, systemPrompt: { type: "preset", preset: "claude_code" } },
  });
  return {
    pids: () => alivePids(children),
    claim(cwd) {
      const input = new InputQueue();
      const sessionId = randomUUID();
      const allow = confineFileTools(benchPolicy(context.home).allowedTools, cwd);
      const conversation = spare.claim({
        prompt: input,
        options: {
          cwd,
          permissionMode: options.permissionMode ?? "dontAsk",
          ...(append ? { appendSystemPrompt: append } : {}),
          settings: { permissions: { allow } },
        },
      });
      spare.claimed.catch(() => undefined); // a refusal shows up as the turn's error result
      return driveConversation(conversation, input, sessionId, children);
    },
    async close() {
      spare.close();
      await waitForExit(children);
    },
  };
}

function driveConversation(
  conversation: Query,
  input: InputQueue,
  sessionId: string,
  children: ChildProcess[],
): DirectConversation {
  const waiting: {
    pushedAt: number;
    started: number;
    resolve(turn: DirectTurn): void;
    reject(error: unknown): void;
  }[] = [];
  let text = "";
  const loop = (async () => {
    for await (const message of conversation as AsyncIterable<SDKMessage>) {
      if (message.type === "assistant" && message.parent_tool_use_id === null) {
        for (const block of message.message.content) if (block.type === "text") text += block.text;
      } else if (message.type === "result") {
        const turn = waiting.shift();
        turn?.resolve({
          pushedAt: turn.pushedAt,
          elapsedMs: performance.now() - turn.started,
          text,
          isError: message.is_error,
        });
        text = "";
      }
    }
    throw new Error("the conversation ended");
  })().catch((error: unknown) => {
    for (const turn of waiting.splice(0)) turn.reject(error);
  });
  return {
    sessionId,
    send(message) {
      return new Promise<DirectTurn>((resolve, reject) => {
        waiting.push({ pushedAt: Date.now(), started: performance.now(), resolve, reject });
        input.push(message);
      });
    },
    pids: () => alivePids(children),
    async close() {
      input.end();
      conversation.close();
      await loop;
      await waitForExit(children);
    },
  };
}

function alivePids(children: ChildProcess[]): number[] {
  return children
    .filter((child) => child.exitCode === null && child.signalCode === null)
    .flatMap((child) => (child.pid === undefined ? [] : [child.pid]));
}

/**
 * Waits for every child to exit, killing by pid any that is still there after 5 s, then closes
 * our ends of its pipes (an open one would keep the benchmark alive).
 */
async function waitForExit(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) {
            resolve();
            return;
          }
          const timer = setTimeout(() => {
            if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
          }, 5_000);
          child.once("exit", () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    ),
  );
  for (const child of children) {
    child.stdin?.destroy();
    child.stdout?.destroy();
  }
}
