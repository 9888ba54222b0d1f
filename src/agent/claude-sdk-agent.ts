import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from "node:child_process";
import {
  createSdkMcpServer,
  query,
  tool,
  type Options,
  type SDKMessage,
  type SDKUserMessage,
  type SpawnOptions,
} from "@anthropic-ai/claude-agent-sdk";
import { z } from "zod";
import { AsyncQueue } from "../core/async-queue.js";
import { asAgentSessionId } from "../core/ids.js";
import type { Logger } from "../logging/logger.js";
import { AgentError } from "./agent-error.js";
import type {
  AgentConversation,
  AgentEvent,
  AgentInput,
  AgentPort,
  AgentStartOptions,
  ChatTools,
} from "./port.js";
import { killProcessTree } from "./process-tree.js";
import { confineFileTools, grantsShell } from "./tool-rules.js";

/** The only module that imports the Claude Agent SDK. */

export interface ClaudeSdkAgentDeps {
  logger: Logger;
  /** The whole environment of each CLI child (the SDK does not merge it with ours). */
  env: Record<string, string | undefined>;
  /**
   * Days the CLI keeps transcripts before its cleanup deletes them. Resume needs the
   * transcript, so dispatch raises the CLI's default of 30.
   */
  transcriptRetentionDays?: number;
}

const CHAT_TOOL_SERVER = "dispatch";
/** The tool name as the model and `allowedTools` see it. */
export const SEND_MESSAGE_TOOL = `mcp__${CHAT_TOOL_SERVER}__send_message`;
const SESSION_NOT_FOUND = /No conversation found with session ID/i;
const PROMPT_TOO_LONG = /prompt is too long/i;
const STDERR_TAIL_CHARS = 4_000;

export function createClaudeSdkAgent(deps: ClaudeSdkAgentDeps): AgentPort {
  return { start: (options) => startConversation(deps, options) };
}

function startConversation(
  deps: ClaudeSdkAgentDeps,
  options: AgentStartOptions,
): AgentConversation {
  const log = deps.logger.child({ ...options.logFields, agentSessionId: options.sessionId });
  const input = new AsyncQueue<SDKUserMessage>();
  let child: ChildProcess | undefined;
  let stderrTail = "";

  const spawnCli = (spawnOptions: SpawnOptions): ChildProcessWithoutNullStreams => {
    // Our own spawn: we need the pid for health checks and a process group so that close()
    // ends the CLI's own children (shells, MCP servers) too.
    const cli = spawn(spawnOptions.command, spawnOptions.args, {
      cwd: spawnOptions.cwd,
      env: spawnOptions.env,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    cli.stderr.setEncoding("utf8");
    cli.stderr.on("data", (chunk: string) => {
      stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
      for (const line of chunk.split("\n")) {
        if (line.trim()) log.debug("agent-stderr", { line });
      }
    });
    spawnOptions.signal.addEventListener("abort", () => killProcessTree(cli, "SIGTERM"));
    child = cli;
    return cli;
  };

  const sdkOptions: Options = {
    cwd: options.cwd,
    env: deps.env,
    spawnClaudeCodeProcess: spawnCli,
    permissionMode: options.permissionMode,
    // Built-in tools a tier does not allow are not even shown to the model.
    tools: builtInToolsOf(options.allowedTools),
    // Without a shell, file tools are held to the chat's own folder.
    allowedTools: grantsShell(options.allowedTools)
      ? [...options.allowedTools]
      : confineFileTools(options.allowedTools, options.cwd),
    disallowedTools: [...options.disallowedTools],
    // Contacts' texts are delivered exactly as written: no slash commands, no @file expansion.
    verbatimPrompts: true,
    // The user's own ~/.claude settings and project files must not change what a contact's
    // agent may do.
    settingSources: [],
    settings: { cleanupPeriodDays: deps.transcriptRetentionDays ?? 36_500 },
    ...(options.model ? { model: options.model } : {}),
    ...(options.resume ? { resume: options.sessionId } : { sessionId: options.sessionId }),
    ...(options.systemPromptAppend
      ? {
          systemPrompt: {
            type: "preset",
            preset: "claude_code",
            append: options.systemPromptAppend,
          },
        }
      : {}),
    ...(options.chatTools
      ? { mcpServers: { [CHAT_TOOL_SERVER]: chatToolServer(options.chatTools) } }
      : {}),
  };

  const conversation = query({ prompt: input, options: sdkOptions });
  log.debug("agent-start", { resume: options.resume, cwd: options.cwd });

  async function* events(): AsyncGenerator<AgentEvent> {
    let lastErrorText: string | undefined;
    try {
      for await (const message of conversation) {
        const event = toEvent(message);
        if (event?.type === "turn-end" && event.isError) {
          lastErrorText = event.errorText;
          // An unknown resume id ends in an error result before the stream throws; it answers
          // nothing, so it must not reach the session as a turn.
          if (SESSION_NOT_FOUND.test(`${event.errorText ?? ""}\n${stderrTail}`)) break;
        }
        if (event) yield event;
      }
    } catch (error) {
      throw classifyFailure(error, stderrTail, lastErrorText);
    }
    if (lastErrorText && SESSION_NOT_FOUND.test(lastErrorText + stderrTail)) {
      throw classifyFailure(undefined, stderrTail, lastErrorText);
    }
  }

  return {
    events: events(),
    push(message: AgentInput) {
      input.push({
        type: "user",
        message: { role: "user", content: message.text },
        parent_tool_use_id: null,
        uuid: message.id as SDKUserMessage["uuid"],
        client_composed: true,
      });
    },
    isAlive: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    get pid() {
      return child?.pid;
    },
    async interrupt() {
      await conversation.interrupt();
    },
    async close() {
      input.end();
      conversation.close();
      if (child) await waitForExit(child);
      if (child) killProcessTree(child, "SIGKILL");
    },
  };
}

/** `["Read", "Bash(git:*)", "mcp__dispatch__send_message"]` -> `["Read", "Bash"]`. */
export function builtInToolsOf(allowedTools: readonly string[]): string[] {
  const names = allowedTools
    .filter((name) => !name.startsWith("mcp__"))
    .map((name) => name.replace(/\(.*\)$/, ""));
  return [...new Set(names)];
}

function chatToolServer(chatTools: ChatTools) {
  return createSdkMcpServer({
    name: CHAT_TOOL_SERVER,
    version: "1.0.0",
    tools: [
      tool(
        "send_message",
        "Send a message to the person (or group) you are talking with now, before your turn ends. " +
          "Use it for an interim update; your final answer is sent on its own.",
        { text: z.string().min(1).max(20_000) },
        async ({ text }) => {
          await chatTools.sendMessage(text);
          return { content: [{ type: "text", text: "Sent." }] };
        },
      ),
    ],
  });
}

function toEvent(message: SDKMessage): AgentEvent | undefined {
  switch (message.type) {
    case "system":
      return message.subtype === "init"
        ? { type: "init", sessionId: asAgentSessionId(message.session_id) }
        : undefined;
    case "assistant": {
      if (message.parent_tool_use_id !== null) return undefined;
      const text = message.message.content
        .flatMap((block) => (block.type === "text" ? [block.text] : []))
        .join("");
      return text ? { type: "text", text } : undefined;
    }
    case "result": {
      const inputIds =
        message.user_message_uuids ??
        (message.user_message_uuid ? [message.user_message_uuid] : []);
      const errorText =
        message.subtype === "success"
          ? message.is_error
            ? message.result
            : undefined
          : message.errors.join("; ");
      return {
        type: "turn-end",
        sessionId: asAgentSessionId(message.session_id),
        inputIds,
        isError: message.is_error || message.subtype !== "success",
        ...(errorText !== undefined ? { errorText } : {}),
        totalCostUsd: message.total_cost_usd,
        durationMs: message.duration_ms,
      };
    }
    default:
      return undefined;
  }
}

function classifyFailure(
  cause: unknown,
  stderrTail: string,
  lastErrorText: string | undefined,
): AgentError {
  const evidence = `${lastErrorText ?? ""}\n${stderrTail}\n${cause instanceof Error ? cause.message : ""}`;
  if (SESSION_NOT_FOUND.test(evidence)) {
    return new AgentError(
      "agent_session_not_found",
      "The agent no longer knows this session id (its transcript is gone); a fresh session is needed.",
      { cause },
    );
  }
  if (PROMPT_TOO_LONG.test(evidence)) {
    return new AgentError(
      "agent_prompt_too_long",
      "The conversation no longer fits the model's context window.",
      {
        cause,
      },
    );
  }
  const detail = stderrTail.trim().split("\n").slice(-3).join(" | ");
  return new AgentError(
    "agent_process_failed",
    `The Claude CLI process failed: ${cause instanceof Error ? cause.message : "stream ended"}${detail ? ` (stderr: ${detail})` : ""}`,
    { cause },
  );
}

function waitForExit(child: ChildProcess, timeoutMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      killProcessTree(child, "SIGKILL");
      resolve();
    }, timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
