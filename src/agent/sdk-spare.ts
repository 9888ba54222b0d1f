/**
 * Prewarmed spare CLI processes through the SDK (pool logic in spare-processes.ts). `prewarm()`
 * fixes the tools shown to the model, the MCP servers and the system prompt preset: those make a
 * spare's profile. A claim carries the rest: cwd, model, permission mode, the prompt append, and
 * the allow rules as a settings overlay, which the CLI enforces as it does `allowedTools`.
 */
import type { ChildProcess, ChildProcessWithoutNullStreams } from "node:child_process";
import {
  prewarm,
  type SDKUserMessage,
  type SpareProcess,
  type SpawnOptions,
} from "@anthropic-ai/claude-agent-sdk";
import { AsyncQueue } from "./async-queue.js";
import { describeError } from "../utils/errors.js";
import type { Logger } from "../logging/logger.js";
import type { AgentConversation, AgentEvent, AgentStartOptions } from "./port.js";
import type { ClaudeSdkAgentDeps } from "./claude-sdk-agent.js";
import { spawnTrackedCli, STDERR_TAIL_CHARS, waitForExit } from "./cli-process.js";
import { killProcessTree } from "./process-tree.js";
import { startConversation, toUserMessage } from "./sdk-conversation.js";
import { classifyFailure, toEvent } from "./sdk-events.js";
import {
  allowRulesOf,
  builtInToolsOf,
  CHAT_TOOL_SERVER,
  chatToolServer,
  compactionHooks,
  conversationSettings,
  limitsOf,
  sharedOptions,
  shellGuardHooks,
  withAllowRules,
  type TurnLimits,
} from "./sdk-options.js";
import {
  afterClaim,
  createChatToolsBinding,
  withFallback,
  type ChatToolsBinding,
  type ParkedProcess,
  type SpareProfile,
} from "./spare-processes.js";
import { narrowShellRules } from "./tool-rules.js";

export interface AgentProfile extends SpareProfile {
  tools: string[];
  disallowedTools: string[];
  /** Narrow shell rules, enforced by a hook fixed at prewarm. */
  shellRules: string[];
  /** Fixed at prewarm: a claim cannot set them. */
  limits: TurnLimits;
  chatTools: boolean;
  presetSystemPrompt: boolean;
}

export function makeProfile(
  allowedTools: readonly string[],
  disallowed: readonly string[],
  chatTools: boolean,
  presetSystemPrompt: boolean,
  limits: TurnLimits,
): AgentProfile {
  const tools = builtInToolsOf(allowedTools).sort();
  const disallowedTools = [...new Set(disallowed)].sort();
  const shellRules = narrowShellRules(allowedTools);
  const fixedLimits = limitsOf(limits);
  const key = JSON.stringify([
    tools,
    disallowedTools,
    shellRules,
    fixedLimits,
    chatTools,
    presetSystemPrompt,
  ]);
  return {
    key,
    tools,
    disallowedTools,
    shellRules,
    limits: fixedLimits,
    chatTools,
    presetSystemPrompt,
  };
}

export function profileOf(options: AgentStartOptions): AgentProfile {
  return makeProfile(
    options.allowedTools,
    options.disallowedTools,
    options.chatTools !== undefined,
    options.systemPromptAppend !== undefined,
    options,
  );
}

export interface Spare extends ParkedProcess {
  sdk: SpareProcess;
  /** Its `send_message` handler, bound to a chat at claim. */
  binding: ChatToolsBinding;
  /** What its compaction hook tells the agent: the claiming conversation's `afterCompaction`. */
  compaction: { afterCompaction?: () => string | undefined };
  /** Where its stderr goes; moved to the conversation's logger at claim. */
  output: { log: Logger; tail: string };
  readonly child: ChildProcess | undefined;
}

/** How long a closed spare gets to exit before it is killed: it holds no conversation. */
const SPARE_EXIT_WAIT_MS = 1_000;

export async function prewarmSpare(
  deps: ClaudeSdkAgentDeps,
  profile: AgentProfile,
  signal: AbortSignal,
): Promise<Spare> {
  const output = { log: deps.logger.child({ spare: true }), tail: "" };
  const binding = createChatToolsBinding();
  const compaction: Spare["compaction"] = {};
  const held: { child?: ChildProcess } = {};
  // A start still under way at shutdown is killed: the SDK's prewarm then fails at once instead
  // of holding the shutdown until the CLI is ready (up to a minute on a loaded machine).
  const killOnAbort = () => {
    if (held.child) killProcessTree(held.child, "SIGKILL");
  };
  signal.addEventListener("abort", killOnAbort, { once: true });
  const spawnCli = (spawnOptions: SpawnOptions): ChildProcessWithoutNullStreams => {
    const cli = spawnTrackedCli(deps, spawnOptions, (chunk) => {
      output.tail = (output.tail + chunk).slice(-STDERR_TAIL_CHARS);
      for (const line of chunk.split("\n")) {
        if (line.trim()) output.log.debug("agent-stderr", { line });
      }
    });
    // The SDK waits for a spare's exit from several places at once; that is no leak.
    cli.setMaxListeners(32);
    held.child = cli;
    if (signal.aborted) killOnAbort();
    return cli;
  };
  let sdk: SpareProcess;
  try {
    sdk = await prewarm({
      options: {
        ...sharedOptions(deps, spawnCli),
        tools: profile.tools,
        disallowedTools: profile.disallowedTools,
        ...limitsOf(profile.limits),
        // As a cold start with `systemPromptAppend`; the append itself comes with the claim.
        ...(profile.presetSystemPrompt
          ? { systemPrompt: { type: "preset", preset: "claude_code" } }
          : {}),
        ...(profile.chatTools
          ? { mcpServers: { [CHAT_TOOL_SERVER]: chatToolServer(binding) } }
          : {}),
        // Hooks are fixed at prewarm: the recap asks whichever conversation claims the spare.
        hooks: {
          ...shellGuardHooks(profile.shellRules),
          ...compactionHooks(() => compaction.afterCompaction?.()),
        },
      },
    });
  } catch (error) {
    if (held.child) killProcessTree(held.child, "SIGKILL");
    throw error;
  } finally {
    signal.removeEventListener("abort", killOnAbort);
  }
  const spare = sdk;
  return {
    sdk: spare,
    binding,
    compaction,
    output,
    get child() {
      return held.child;
    },
    exited: spare.exited,
    async close() {
      spare.close();
      if (held.child) await waitForExit(held.child, SPARE_EXIT_WAIT_MS);
      if (held.child) killProcessTree(held.child, "SIGKILL");
    },
  };
}

/**
 * A new conversation on a claimed spare. Its input is held until the claim is accepted; when it
 * is refused (or only partly applied: `option_not_applied` would run it on another model), it
 * starts cold instead with every message pushed so far (`withFallback`).
 */
export function startFromSpare(
  deps: ClaudeSdkAgentDeps,
  options: AgentStartOptions,
  spare: Spare,
): AgentConversation {
  const log = deps.logger.child({ ...options.logFields, agentSessionId: options.sessionId });
  const input = new AsyncQueue<SDKUserMessage>();
  const accepted = spare.sdk.claimed.then(
    (claim) => {
      log.debug("spare-claim", { pid: spare.child?.pid, parkedMs: claim.parkedMs });
      return true;
    },
    (error: unknown) => {
      log.warn("spare-claim-refused", { cause: describeError(error) });
      return false;
    },
  );
  const conversation = spare.sdk.claim({
    prompt: afterClaim(accepted, input),
    options: {
      cwd: options.cwd,
      permissionMode: options.permissionMode,
      ...(options.model ? { model: options.model } : {}),
      ...(options.systemPromptAppend ? { appendSystemPrompt: options.systemPromptAppend } : {}),
      settings: withAllowRules(conversationSettings(options), allowRulesOf(options)),
    },
  });
  spare.output.log = log;
  if (options.chatTools) spare.binding.bind(options.chatTools);
  if (options.afterCompaction) spare.compaction.afterCompaction = options.afterCompaction;
  log.debug("agent-start", { resume: false, cwd: options.cwd, spare: true });

  async function* events(): AsyncGenerator<AgentEvent> {
    try {
      for await (const message of conversation) {
        const event = toEvent(message);
        if (event) yield event;
      }
    } catch (error) {
      throw classifyFailure(error, spare.output.tail, undefined);
    }
  }

  const claimed: AgentConversation = {
    events: events(),
    push: (message) => input.push(toUserMessage(message)),
    isAlive() {
      const child = spare.child;
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    get pid() {
      return spare.child?.pid;
    },
    async interrupt() {
      await conversation.interrupt();
    },
    async close() {
      input.end();
      conversation.close();
      await spare.close();
    },
  };
  return withFallback({ conversation: claimed, accepted }, () => startConversation(deps, options));
}
