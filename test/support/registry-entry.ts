import type { RegistryEntry } from "../../src/store/registry.js";
import { asSessionName } from "../../src/utils/ids.js";

/**
 * A registry entry for tests: John Doe's chat, on the favorite tier, that has not talked yet
 * (no session id, no turns), with `overrides` over it.
 */
export function makeEntry(name: string, overrides: Partial<RegistryEntry> = {}): RegistryEntry {
  return {
    session_name: asSessionName(name),
    contact_name: "John Doe",
    tier: "favorite",
    session_id: null,
    created_at: "2026-02-01T10:00:00.000Z",
    last_message_time: null,
    chat_kind: "individual",
    channel: null,
    previous_session_ids: [],
    turns: 0,
    errors: 0,
    restarts: 0,
    ...overrides,
  };
}
