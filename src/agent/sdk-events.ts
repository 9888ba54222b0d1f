/**
 * The SDK's messages as our agent events, and a failed stream as an `AgentError` that names its
 * cause.
 */
import type { SDKMessage } from "@anthropic-ai/claude-agent-sdk";
import { asAgentSessionId } from "../utils/ids.js";
import { AgentError } from "./agent-error.js";
import type { AgentEvent } from "./port.js";

const PROMPT_TOO_LONG = /prompt is too long/i;

/** The CLI's startup failure for a `--resume` id it finds no conversation for. */
export function isResumeTargetNotFound(message: SDKMessage): boolean {
  return (
    message.type === "result" &&
    message.subtype !== "success" &&
    message.startup_failure_reason === "resume_target_not_found"
  );
}

export function toEvent(message: SDKMessage): AgentEvent | undefined {
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

export function classifyFailure(
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
