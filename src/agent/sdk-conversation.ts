/**
 * A conversation started cold: one `query()` of the SDK in streaming-input mode, fed by the
 * messages pushed to it, its SDK messages read as our events (`sdk-events.ts`).
 */
import type { ChildProcess, ChildProcessWithoutNullStreams } from "node:child_process";
import os from "node:os";
import {
  query,
  type Options,
  type SDKUserMessage,
  type SpawnOptions,
} from "@anthropic-ai/claude-agent-sdk";
import { AsyncQueue } from "./async-queue.js";
import { describeError } from "../utils/errors.js";
import type { Logger } from "../logging/logger.js";
import { AgentError } from "./agent-error.js";
import type {
  AgentConversation,
  AgentEvent,
  AgentInput,
  AgentStartOptions,
  ResumedHistory,
} from "./port.js";
import { countResumedMessages } from "./resumed-transcript.js";
import { claudeConfigDir } from "./claude-cli-layout.js";
import type { ClaudeSdkAgentDeps } from "./claude-sdk-agent.js";
import { spawnTrackedCli, STDERR_TAIL_CHARS, waitForExit } from "./cli-process.js";
import { killProcessTree } from "./process-tree.js";
import { classifyFailure, isResumeTargetNotFound, toEvent } from "./sdk-events.js";
import {
  allowRulesOf,
  builtInToolsOf,
  CHAT_TOOL_SERVER,
  chatToolServer,
  compactionHooks,
  conversationSettings,
  limitsOf,
  processSettings,
  sharedOptions,
  shellGuardHooks,
} from "./sdk-options.js";
import { narrowShellRules } from "./tool-rules.js";

export function startConversation(
  deps: ClaudeSdkAgentDeps,
  options: AgentStartOptions,
): AgentConversation {
  const log = deps.logger.child({ ...options.logFields, agentSessionId: options.sessionId });
  const input = new AsyncQueue<SDKUserMessage>();
  let child: ChildProcess | undefined;
  let stderrTail = "";
  let settleResumed: (history: ResumedHistory | undefined) => void = () => undefined;
  const resumed = options.resume
    ? new Promise<ResumedHistory | undefined>((resolve) => (settleResumed = resolve))
    : undefined;

  const spawnCli = (spawnOptions: SpawnOptions): ChildProcessWithoutNullStreams => {
    // Counted now, before the CLI starts: the transcript it resumes from is in place already.
    if (resumed) checkResumedTranscript(deps, options, spawnOptions, log, settleResumed);
    const cli = spawnTrackedCli(deps, spawnOptions, (chunk) => {
      stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_CHARS);
      for (const line of chunk.split("\n")) {
        if (line.trim()) log.debug("agent-stderr", { line });
      }
    });
    child = cli;
    return cli;
  };

  const sdkOptions: Options = {
    ...sharedOptions(deps, spawnCli),
    settings: { ...processSettings(deps), ...conversationSettings(options) },
    cwd: options.cwd,
    permissionMode: options.permissionMode,
    // Built-in tools a tier does not allow are not even shown to the model.
    tools: builtInToolsOf(options.allowedTools),
    allowedTools: allowRulesOf(options),
    disallowedTools: [...options.disallowedTools],
    ...limitsOf(options),
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
    // The shell guard and the compaction recap together: a second `hooks` would drop the first.
    hooks: {
      ...shellGuardHooks(narrowShellRules(options.allowedTools)),
      ...(options.afterCompaction ? compactionHooks(options.afterCompaction) : {}),
    },
  };

  const conversation = query({ prompt: input, options: sdkOptions });
  log.debug("agent-start", { resume: options.resume, cwd: options.cwd });

  async function* events(): AsyncGenerator<AgentEvent> {
    let lastErrorText: string | undefined;
    let resumeTargetMissing = false;
    try {
      for await (const message of conversation) {
        // An unknown resume id ends in an error result before the stream throws; it answers
        // nothing, so it must not reach the session as a turn. The bundled CLI names the cause
        // (`startup_failure_reason`) on every such result, with a session store and without, so
        // its error text ("No conversation found with session ID") is not matched.
        if (isResumeTargetNotFound(message)) {
          resumeTargetMissing = true;
          break;
        }
        const event = toEvent(message);
        if (event?.type === "turn-end" && event.isError) lastErrorText = event.errorText;
        if (event) yield event;
      }
    } catch (error) {
      throw classifyFailure(error, stderrTail, lastErrorText);
    } finally {
      settleResumed(undefined); // the process ended before it could be checked
    }
    if (resumeTargetMissing) {
      throw new AgentError(
        "agent_session_not_found",
        "The agent no longer knows this session id (its transcript is gone); a fresh session is needed.",
      );
    }
  }

  return {
    events: events(),
    ...(resumed ? { resumed } : {}),
    push(message: AgentInput) {
      input.push(toUserMessage(message));
    },
    isAlive: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    get pid() {
      return child?.pid;
    },
    async interrupt() {
      await conversation.interrupt();
    },
    async close() {
      settleResumed(undefined);
      input.end();
      conversation.close();
      if (child) await waitForExit(child);
      if (child) killProcessTree(child, "SIGKILL");
    },
  };
}

/**
 * Counts the messages in the transcript a resuming CLI starts from. With a transcript store the
 * SDK has written it into a temporary config folder (`CLAUDE_CONFIG_DIR` of the child); without,
 * the CLI reads its own.
 */
function checkResumedTranscript(
  deps: ClaudeSdkAgentDeps,
  options: AgentStartOptions,
  spawnOptions: SpawnOptions,
  log: Logger,
  settle: (history: ResumedHistory | undefined) => void,
): void {
  const configDir = spawnOptions.env.CLAUDE_CONFIG_DIR ?? claudeConfigDir(deps.env, os.homedir());
  countResumedMessages({
    claudeConfigDir: configDir,
    cwd: options.cwd,
    sessionId: options.sessionId,
  }).then(
    (messages) => settle({ messages }),
    (error: unknown) => {
      log.warn("resume-check-failed", { cause: describeError(error) });
      settle(undefined);
    },
  );
}

export function toUserMessage(message: AgentInput): SDKUserMessage {
  return {
    type: "user",
    message: { role: "user", content: message.text },
    parent_tool_use_id: null,
    uuid: message.id as SDKUserMessage["uuid"],
    client_composed: true,
  };
}
