/**
 * What a chat's session starts from, as pure functions: the registry entry a chat gets on its
 * first message, and the options its agent starts with (the tier's policy, the chat's folder,
 * the session id, the chat's own tools). Apart from the session manager, which writes the
 * registry and owns the session's life.
 */
import type { AgentStartOptions } from "../agent/port.js";
import { createSessionName } from "../identity/session-name.js";
import type { RegistryEntry } from "../store/registry.js";
import { newAgentSessionId, type AgentSessionId, type ChatId } from "../utils/ids.js";
import type { AgentPolicy, Delivery, SessionManagerDeps } from "./session-manager-types.js";

/**
 * A chat's entry on its first message: a unique session name and a session id of our own, or
 * those of `person`, the entry of its person's session, which it joins.
 */
export function newRegistryEntry(
  delivery: Delivery,
  nowMs: number,
  isNameTaken: (lowerCaseName: string) => boolean,
  person?: RegistryEntry,
): RegistryEntry {
  return {
    session_name:
      person?.session_name ??
      createSessionName(delivery.contactName ?? delivery.chatId, isNameTaken),
    contact_name: delivery.contactName,
    tier: delivery.tier,
    session_id: person?.session_id ?? newAgentSessionId(),
    created_at: new Date(nowMs).toISOString(),
    last_message_time: null,
    chat_kind: delivery.chatKind,
    channel: delivery.channel,
    previous_session_ids: [],
    turns: 0,
    errors: 0,
    restarts: 0,
  };
}

export interface SessionStart {
  chatId: ChatId;
  entry: RegistryEntry;
  /** The chat's prepared folder, the agent's working directory. */
  cwd: string;
  sessionId: AgentSessionId;
  resume: boolean;
}

/** How the agent starts for a chat: its tier's policy, and `send_message` when there is one. */
export function agentStartOptions(
  start: SessionStart,
  policy: AgentPolicy,
  tools: Pick<SessionManagerDeps, "sendInterim">,
): AgentStartOptions {
  const { chatId, entry } = start;
  return {
    cwd: start.cwd,
    sessionId: start.sessionId,
    resume: start.resume,
    allowedTools: policy.allowedTools,
    disallowedTools: policy.disallowedTools,
    permissionMode: policy.permissionMode,
    ...(policy.model ? { model: policy.model } : {}),
    ...(policy.systemPromptAppend ? { systemPromptAppend: policy.systemPromptAppend } : {}),
    ...(policy.maxTurns !== undefined ? { maxTurns: policy.maxTurns } : {}),
    ...(policy.maxBudgetUsd !== undefined ? { maxBudgetUsd: policy.maxBudgetUsd } : {}),
    ...(tools.sendInterim
      ? { chatTools: { sendMessage: (text: string) => tools.sendInterim!(chatId, text) } }
      : {}),
    logFields: { chatId, sessionName: entry.session_name },
  };
}
