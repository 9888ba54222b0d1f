/**
 * The SDK options, settings and hooks of a CLI child: those of every child, those of one
 * conversation (its folder, allow rules, limits), the shell guard and compaction hooks, and the
 * in-process chat tool server.
 */
import type { ChildProcessWithoutNullStreams } from "node:child_process";
import path from "node:path";
import {
  createSdkMcpServer,
  tool,
  type Options,
  type Settings,
  type SpawnOptions,
} from "@anthropic-ai/claude-agent-sdk";
import { z } from "zod";
import type { AgentStartOptions, ChatTools } from "./port.js";
import type { ClaudeSdkAgentDeps } from "./claude-sdk-agent.js";
import { shellCommandVerdict } from "./shell-rules.js";
import { confineFileTools, grantsUnrestrictedShell } from "./tool-rules.js";

export const CHAT_TOOL_SERVER = "dispatch";
/** The tool name as the model and `allowedTools` see it. */
export const SEND_MESSAGE_TOOL = `mcp__${CHAT_TOOL_SERVER}__send_message`;
/** Where a conversation's (disabled) auto-memory points, inside its chat's folder. */
const MEMORY_FOLDER = ".memory";

/** The options of every CLI child, started cold or prewarmed as a spare. */
export function sharedOptions(
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
export function processSettings(deps: ClaudeSdkAgentDeps): Settings {
  return { cleanupPeriodDays: deps.transcriptRetentionDays ?? 36_500 };
}

/**
 * Flag settings of one conversation. The CLI's auto-memory is off (`child-env.ts`), yet it still
 * lets file tools read its memory folder past any allow rule; by default that folder is keyed by
 * the git root, one for every chat when the home folder is kept in git. Pointed into the chat's
 * own folder, it holds nothing the chat could not read anyway.
 */
export function conversationSettings(options: AgentStartOptions): Settings {
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
export function withAllowRules(settings: Settings, allow: string[]): Settings {
  return { ...settings, permissions: { ...settings.permissions, allow } };
}

/**
 * The allow rules of a conversation: unless it has an unrestricted shell, file tools stay in the
 * chat's folder.
 */
export function allowRulesOf(options: AgentStartOptions): string[] {
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
export function shellGuardHooks(rules: readonly string[]): Options["hooks"] {
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

/** The turn limits of a conversation (`AgentStartOptions`); unset or undefined: none. */
export interface TurnLimits {
  maxTurns?: number | undefined;
  maxBudgetUsd?: number | undefined;
}

export function limitsOf(limits: TurnLimits): Pick<Options, "maxTurns" | "maxBudgetUsd"> {
  return {
    ...(limits.maxTurns !== undefined ? { maxTurns: limits.maxTurns } : {}),
    ...(limits.maxBudgetUsd !== undefined ? { maxBudgetUsd: limits.maxBudgetUsd } : {}),
  };
}

/**
 * The CLI runs SessionStart hooks of source "compact" as it compacts the context, and puts their
 * `additionalContext` beside the summary, before the model reads on.
 */
export function compactionHooks(afterCompaction: () => string | undefined): Options["hooks"] {
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

/** `["Read", "Bash(git:*)", "mcp__dispatch__send_message"]` -> `["Read", "Bash"]`. */
export function builtInToolsOf(allowedTools: readonly string[]): string[] {
  const names = allowedTools
    .filter((name) => !name.startsWith("mcp__"))
    .map((name) => name.replace(/\(.*\)$/, ""));
  return [...new Set(names)];
}

export function chatToolServer(chatTools: ChatTools) {
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
