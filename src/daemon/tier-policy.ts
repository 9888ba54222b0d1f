import type { Config } from "../config/schema.js";
import { DispatchError } from "../utils/errors.js";
import type { AgentPolicy } from "../core/session-manager.js";
import { WRAPPING_SYSTEM_PROMPT } from "../identity/wrap-message.js";

/** Said to every agent: what it is part of and how its replies travel. */
const DISPATCH_PROMPT =
  "You are a personal assistant answering one chat over a messaging app, through dispatch. " +
  "Your final text of each turn is sent to the chat as your reply; keep it short and plain, " +
  "like a text message. To send something before your turn ends, use the send_message tool " +
  "when you have it.";

/** The reply that means "say nothing"; dispatch drops it instead of sending it. */
export const SILENT_REPLY = "[silent]";

const GROUP_PROMPT =
  "This is a group chat: not every message needs an answer from you. When nothing needs " +
  `saying, reply with exactly ${SILENT_REPLY} and nothing else, and nothing is sent.`;

/** A tier's settings from config, as the agent policy the session manager starts sessions with. */
export function createTierPolicy(config: Config) {
  return (tier: string, chatKind: "individual" | "group"): AgentPolicy => {
    const settings = Object.hasOwn(config.tiers, tier) ? config.tiers[tier] : undefined;
    if (!settings) {
      throw new DispatchError(
        "unknown_tier",
        `Tier ${JSON.stringify(tier)} is not configured; add it under \`tiers\` in config.json`,
      );
    }
    const model = settings.model ?? config.model;
    const prompt = [
      DISPATCH_PROMPT,
      WRAPPING_SYSTEM_PROMPT,
      chatKind === "group" ? GROUP_PROMPT : undefined,
      settings.systemPrompt,
    ]
      .filter(Boolean)
      .join("\n\n");
    return {
      allowedTools: settings.allowedTools,
      disallowedTools: settings.disallowedTools,
      permissionMode: settings.permissionMode,
      systemPromptAppend: prompt,
      ...(model ? { model } : {}),
      ...(settings.maxTurns !== undefined ? { maxTurns: settings.maxTurns } : {}),
      ...(settings.maxBudgetUsd !== undefined ? { maxBudgetUsd: settings.maxBudgetUsd } : {}),
    };
  };
}

export function isSilentReply(text: string): boolean {
  const trimmed = text.trim();
  return trimmed === "" || trimmed.toLowerCase() === SILENT_REPLY;
}
