import { randomUUID } from "node:crypto";
/**
 * Identifier types. Each is a plain string at run time; the brand keeps a chat id from being
 * passed where a session name or an SDK session id is expected.
 */
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** A normalised chat id: E.164 phone number, lower-cased email, or a group chat id as given. */
export type ChatId = Brand<string, "ChatId">;
/** A folder-safe, unique, never-changing name for a chat's session (`john-doe`). */
export type SessionName = Brand<string, "SessionName">;
/** The Claude Agent SDK's session id (a UUID); what resume needs. */
export type AgentSessionId = Brand<string, "AgentSessionId">;

export const asChatId = (value: string): ChatId => value as ChatId;
export const asSessionName = (value: string): SessionName => value as SessionName;
export const asAgentSessionId = (value: string): AgentSessionId => value as AgentSessionId;

/** Tiers decide who is answered and what the agent may do. Config may add more. */
export const DEFAULT_TIERS = ["admin", "partner", "family", "favorite", "bots", "unknown"] as const;
export type Tier = string;
/** The tier of every chat that matches no contact or group in contacts.json. */
export const UNKNOWN_TIER: Tier = "unknown";

/** A new SDK session id: dispatch picks it so the registry holds it before the first turn. */
export const newAgentSessionId = (): AgentSessionId => randomUUID() as AgentSessionId;
