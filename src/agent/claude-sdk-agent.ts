import { spawn, type ChildProcess, type ChildProcessWithoutNullStreams } from "node:child_process";
import os from "node:os";
import path from "node:path";
import {
  createSdkMcpServer,
  prewarm,
  query,
  tool,
  type Options,
  type SDKMessage,
  type SDKUserMessage,
  type SpareProcess,
  type SessionStore,
  type Settings,
  type SpawnOptions,
} from "@anthropic-ai/claude-agent-sdk";
import { z } from "zod";
import { AsyncQueue } from "./async-queue.js";
import { describeError } from "../utils/errors.js";
import { asAgentSessionId } from "../utils/ids.js";
import type { Logger } from "../logging/logger.js";
import { AgentError } from "./agent-error.js";
import type {
  AgentConversation,
  AgentEvent,
  AgentInput,
  AgentPort,
  AgentStartOptions,
  ChatTools,
  ResumedHistory,
} from "./port.js";
import type { AgentProcessTracker } from "./agent-processes.js";
import { killProcessTree } from "./process-tree.js";
import { countResumedMessages } from "./resumed-transcript.js";
import { claudeConfigDir } from "./claude-cli-layout.js";
import {
  afterClaim,
  createChatToolsBinding,
  createSparePool,
  withFallback,
  type ChatToolsBinding,
  type ParkedProcess,
  type SparePool,
  type SpareProfile,
} from "./spare-processes.js";
import { shellCommandVerdict } from "./shell-rules.js";
import { confineFileTools, grantsUnrestrictedShell, narrowShellRules } from "./tool-rules.js";

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
  /**
   * Prewarmed CLI processes kept ready for new conversations (config `spareProcesses`), about
   * 200 MB each. Default 0: none. With spares, the owner must `close()` the agent at shutdown.
   */
  spares?: number;
  /**
   * The `allowedTools` of the tier to prewarm spares for before the first new conversation;
   * after it, spares follow the tools of the most recent new conversation.
   */
  spareAllowedTools?: readonly string[];
  /** The turn limits that go with `spareAllowedTools` (a spare's limits are fixed at prewarm). */
  spareLimits?: TurnLimits;
  /** Told of every agent process started and ended, so a crashed daemon's orphans can be found. */
  processes?: AgentProcessTracker;
  /**
   * Our own copy of every session's transcript (the SDK's `sessionStore`): a resume loads from
   * it, so a session keeps its context even when `~/.claude` was wiped or swept.
   */
  transcripts?: SessionStore;
}

const CHAT_TOOL_SERVER = "dispatch";
/** The tool name as the model and `allowedTools` see it. */
export const SEND_MESSAGE_TOOL = `mcp__${CHAT_TOOL_SERVER}__send_message`;
const PROMPT_TOO_LONG = /prompt is too long/i;
/** Where a conversation's (disabled) auto-memory points, inside its chat's folder. */
const MEMORY_FOLDER = ".memory";
const STDERR_TAIL_CHARS = 4_000;

/** The SDK adapter: the port, plus the spare processes its owner ends at shutdown. */
export interface ClaudeSdkAgent extends AgentPort {
  /** Ends the spare processes; resolves once they have exited. Conversations end on their own. */
  close(): Promise<void>;
  /** Spares parked and ready for a new conversation. */
  readonly sparesReady: number;
}

export function createClaudeSdkAgent(deps: ClaudeSdkAgentDeps): ClaudeSdkAgent {
  const spares: SparePool<AgentProfile, Spare> = createSparePool({
    size: deps.spares ?? 0,
    prewarm: (profile, signal) => prewarmSpare(deps, profile, signal),
    logger: deps.logger,
    ...(deps.spareAllowedTools
      ? {
          initialProfile: makeProfile(
            deps.spareAllowedTools,
            [],
            true,
            true,
            deps.spareLimits ?? {},
          ),
        }
      : {}),
  });
  return {
    start(options) {
      // A claim cannot resume. `startup()` would not help a resume either: started here, it
      // measured no faster than `query()`, which already overlaps the spawn with the message.
      const spare = options.resume ? undefined : spares.take(profileOf(options));
      if (spare) {
        try {
          return startFromSpare(deps, options, spare);
        } catch (error) {
          // The spare exited between take and claim.
          deps.logger.warn("spare claim failed", { cause: describeError(error) });
          void spare.close();
        }
      }
      return startConversation(deps, options);
    },
    close: () => spares.close(),
    get sparesReady() {
      return spares.ready;
    },
  };
}

function startConversation(
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
      log.warn("resume check failed", { cause: describeError(error) });
      settle(undefined);
    },
  );
}

/**
 * Our own spawn: we need the pid for health checks and a process group so that close() ends the
 * CLI's own children (shells, MCP servers) too.
 */
function spawnTrackedCli(
  deps: ClaudeSdkAgentDeps,
  spawnOptions: SpawnOptions,
  onStderr: (chunk: string) => void,
): ChildProcessWithoutNullStreams {
  const cli = spawn(spawnOptions.command, spawnOptions.args, {
    cwd: spawnOptions.cwd,
    env: spawnOptions.env,
    stdio: ["pipe", "pipe", "pipe"],
    detached: true,
  });
  cli.stderr.setEncoding("utf8");
  cli.stderr.on("data", onStderr);
  spawnOptions.signal.addEventListener("abort", () => killProcessTree(cli, "SIGTERM"));
  const pid = cli.pid;
  if (pid !== undefined) {
    deps.processes?.started(pid);
    cli.once("exit", () => deps.processes?.exited(pid));
  }
  return cli;
}

/** The options of every CLI child, started cold or prewarmed as a spare. */
function sharedOptions(
  deps: ClaudeSdkAgentDeps,
  spawnCli: (spawnOptions: SpawnOptions) => ChildProcessWithoutNullStreams,
): Options {
  return {
    env: deps.env,
    spawnClaudeCodeProcess: spawnCli,
    // Contacts' texts are delivered exactly as written: no slash commands, no @file expansion.
    verbatimPrompts: true,
    // The user's own ~/.claude settings and project files must not change what a contact's
    // agent may do.
    settingSources: [],
    settings: processSettings(deps),
    ...(deps.transcripts ? { sessionStore: deps.transcripts } : {}),
  };
}

/** Flag settings of every CLI child, started cold or prewarmed as a spare. */
function processSettings(deps: ClaudeSdkAgentDeps): Settings {
  return { cleanupPeriodDays: deps.transcriptRetentionDays ?? 36_500 };
}

/**
 * Flag settings of one conversation. The CLI's auto-memory is off (`child-env.ts`), yet it still
 * lets file tools read its memory folder past any allow rule; by default that folder is keyed by
 * the git root, one for every chat when the home folder is kept in git. Pointed into the chat's
 * own folder, it holds nothing the chat could not read anyway.
 */
function conversationSettings(options: AgentStartOptions): Settings {
  return {
    autoMemoryDirectory: path.join(options.cwd, MEMORY_FOLDER),
    // Unless the tier has an unrestricted shell: the CLI's own files outside the folder (task
    // lists, other projects' memory) stay unread too, no allow rule lifts it, and a shell command
    // that names a path outside the folder is refused.
    ...(grantsUnrestrictedShell(options.allowedTools)
      ? {}
      : { permissions: { blockReadsOutsideWorkingDirectories: true } }),
  };
}

/** A claim's settings overlay carries the allow rules, which the CLI enforces as `allowedTools`. */
function withAllowRules(settings: Settings, allow: string[]): Settings {
  return { ...settings, permissions: { ...settings.permissions, allow } };
}

/**
 * The allow rules of a conversation: unless it has an unrestricted shell, file tools stay in the
 * chat's folder.
 */
function allowRulesOf(options: AgentStartOptions): string[] {
  return grantsUnrestrictedShell(options.allowedTools)
    ? [...options.allowedTools]
    : confineFileTools(options.allowedTools, options.cwd);
}

/**
 * For a tier with narrow shell rules: a PreToolUse hook that refuses every shell command its
 * rules do not name (`shell-rules.ts`), before the CLI approves read-only commands of its own
 * accord. A hook that fails blocks the call. Only hooks: the caller merges them with any others
 * (one `hooks` option each would drop the other's).
 */
function shellGuardHooks(rules: readonly string[]): Options["hooks"] {
  if (rules.length === 0) return {};
  return {
    PreToolUse: [
      {
        matcher: "Bash",
        onFailure: "block",
        hooks: [
          (input) => {
            if (input.hook_event_name !== "PreToolUse" || input.tool_name !== "Bash") {
              return Promise.resolve({});
            }
            const command = (input.tool_input as { command?: unknown } | undefined)?.command;
            const verdict = shellCommandVerdict(command, rules);
            if (verdict.allowed) return Promise.resolve({});
            return Promise.resolve({
              hookSpecificOutput: {
                hookEventName: "PreToolUse",
                permissionDecision: "deny",
                permissionDecisionReason: verdict.reason,
              },
            });
          },
        ],
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Prewarmed spares (pool logic in spare-processes.ts). `prewarm()` fixes the tools shown to the
// model, the MCP servers and the system prompt preset: those make a spare's profile. A claim
// carries the rest: cwd, model, permission mode, the prompt append, and the allow rules as a
// settings overlay, which the CLI enforces as it does `allowedTools`.

/** The turn limits of a conversation (`AgentStartOptions`); unset or undefined: none. */
interface TurnLimits {
  maxTurns?: number | undefined;
  maxBudgetUsd?: number | undefined;
}

function limitsOf(limits: TurnLimits): Pick<Options, "maxTurns" | "maxBudgetUsd"> {
  return {
    ...(limits.maxTurns !== undefined ? { maxTurns: limits.maxTurns } : {}),
    ...(limits.maxBudgetUsd !== undefined ? { maxBudgetUsd: limits.maxBudgetUsd } : {}),
  };
}

interface AgentProfile extends SpareProfile {
  tools: string[];
  disallowedTools: string[];
  /** Narrow shell rules, enforced by a hook fixed at prewarm. */
  shellRules: string[];
  /** Fixed at prewarm: a claim cannot set them. */
  limits: TurnLimits;
  chatTools: boolean;
  presetSystemPrompt: boolean;
}

function makeProfile(
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

function profileOf(options: AgentStartOptions): AgentProfile {
  return makeProfile(
    options.allowedTools,
    options.disallowedTools,
    options.chatTools !== undefined,
    options.systemPromptAppend !== undefined,
    options,
  );
}

interface Spare extends ParkedProcess {
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

async function prewarmSpare(
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
function startFromSpare(
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
      log.warn("spare claim refused", { cause: describeError(error) });
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

/**
 * The CLI runs SessionStart hooks of source "compact" as it compacts the context, and puts their
 * `additionalContext` beside the summary, before the model reads on.
 */
function compactionHooks(afterCompaction: () => string | undefined): Options["hooks"] {
  return {
    SessionStart: [
      {
        matcher: "compact",
        hooks: [
          () => {
            const additionalContext = afterCompaction();
            return Promise.resolve(
              additionalContext
                ? {
                    hookSpecificOutput: {
                      hookEventName: "SessionStart" as const,
                      additionalContext,
                    },
                  }
                : {},
            );
          },
        ],
      },
    ],
  };
}

function toUserMessage(message: AgentInput): SDKUserMessage {
  return {
    type: "user",
    message: { role: "user", content: message.text },
    parent_tool_use_id: null,
    uuid: message.id as SDKUserMessage["uuid"],
    client_composed: true,
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

/** The CLI's startup failure for a `--resume` id it finds no conversation for. */
function isResumeTargetNotFound(message: SDKMessage): boolean {
  return (
    message.type === "result" &&
    message.subtype !== "success" &&
    message.startup_failure_reason === "resume_target_not_found"
  );
}

function toEvent(message: SDKMessage): AgentEvent | undefined {
  switch (message.type) {
    case "system":
      if (message.subtype === "init") {
        return { type: "init", sessionId: asAgentSessionId(message.session_id) };
      }
      return message.subtype === "compact_boundary" ? { type: "compact" } : undefined;
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
        ...(message.subtype === "error_max_turns" ? { limit: "turns" as const } : {}),
        ...(message.subtype === "error_max_budget_usd" ? { limit: "spend" as const } : {}),
        totalCostUsd: message.total_cost_usd,
        tokens: tokensOf(message),
        durationMs: message.duration_ms,
      };
    }
    default:
      return undefined;
  }
}

/**
 * `usage` is this turn's main loop; `modelUsage` the process's running totals, every model
 * (main loop, subagents, compaction): the pair tells whether a resumed process carried totals over.
 */
function tokensOf(message: Extract<SDKMessage, { type: "result" }>): {
  turn: number;
  total: number;
} {
  // Read defensively: a crashed or startup-failed turn may carry zeroed or missing figures.
  const usage = message.usage as Partial<Record<string, unknown>> | undefined;
  const turn =
    count(usage?.input_tokens) +
    count(usage?.output_tokens) +
    count(usage?.cache_read_input_tokens) +
    count(usage?.cache_creation_input_tokens);
  let total = 0;
  for (const model of Object.values(
    (message.modelUsage as Record<string, unknown> | undefined) ?? {},
  )) {
    const figures = model as Partial<Record<string, unknown>>;
    total +=
      count(figures.inputTokens) +
      count(figures.outputTokens) +
      count(figures.cacheReadInputTokens) +
      count(figures.cacheCreationInputTokens);
  }
  return { turn, total };
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) ? value : 0;
}

function classifyFailure(
  cause: unknown,
  stderrTail: string,
  lastErrorText: string | undefined,
): AgentError {
  const evidence = `${lastErrorText ?? ""}\n${stderrTail}\n${cause instanceof Error ? cause.message : ""}`;
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
