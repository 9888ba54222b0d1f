/**
 * The files a benchmark home starts with: contacts.json and sessions.json with thousands of
 * entries, written up front so that a run measures the daemon at that size without first
 * sending thousands of messages. Pure.
 */

/** `+1555` and seven digits: a valid E.164 number for every index below ten million. */
export function phoneNumber(index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= 10_000_000) {
    throw new Error(`[bench] Expected a phone index from 0 to 9999999, got ${index}`);
  }
  return `+1555${String(index).padStart(7, "0")}`;
}

export function contactName(index: number): string {
  return `Contact ${index}`;
}

/** The session name dispatch derives from `contactName(index)`. */
export function sessionName(index: number): string {
  return `contact-${index}`;
}

export interface ContactsFileShape {
  contacts: { name: string; tier: string; handles: string[] }[];
  groups: never[];
}

/** contacts.json with contacts `from` .. `from + count - 1`, one phone handle each. */
export function contactsFile(count: number, tier: string, from = 0): ContactsFileShape {
  return {
    contacts: Array.from({ length: count }, (_, offset) => ({
      name: contactName(from + offset),
      tier,
      handles: [phoneNumber(from + offset)],
    })),
    groups: [],
  };
}

/**
 * sessions.json with the same chats registered and never started (`session_id` null), as after
 * an import of the seed's registry: the first message of each starts a fresh session.
 */
export function registryFile(
  count: number,
  tier: string,
  createdAt: string,
  from = 0,
): Record<string, unknown> {
  const entries: Record<string, unknown> = {};
  for (let offset = 0; offset < count; offset += 1) {
    entries[phoneNumber(from + offset)] = {
      session_name: sessionName(from + offset),
      contact_name: contactName(from + offset),
      tier,
      session_id: null,
      created_at: createdAt,
      last_message_time: null,
      chat_kind: "individual",
      channel: null,
      previous_session_ids: [],
      turns: 0,
      errors: 0,
      restarts: 0,
    };
  }
  return entries;
}
