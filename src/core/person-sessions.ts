/**
 * One session per person (`sessionScope: "person"`): the handles of one contact (phone, email,
 * on any channel) share one session. The registry keeps one entry per chat id; the chats of a
 * person's session hold the same `session_name` and `session_id` (`Registry.chatsNamed`). Here:
 * which session a person's chat belongs in, the entry a chat gets when it joins it, the merge of
 * a registry that has one person's chats in several sessions, and a view of the registry whose
 * updates of a session's own fields reach every chat of the session.
 */
import type { Logger } from "../logging/logger.js";
import type { PreviousSession, Registry, RegistryEntry } from "../store/registry.js";
import type { ChatId } from "../utils/ids.js";

/** Why a chat's own session was left for its person's (`previous_session_ids[].reason`). */
export const JOINED_PERSON = "joined-person";

/** A registered chat and its entry. */
export interface RegisteredChat {
  chatId: ChatId;
  entry: RegistryEntry;
}

/**
 * The session `person`'s chats share: that of the most recently active of them (by
 * `last_message_time`, then the earliest created) that has a session id, leaving out `except`.
 * Undefined when none of them has one. Pure.
 */
export function personSessionOf(
  person: readonly ChatId[],
  get: (chatId: ChatId) => RegistryEntry | undefined,
  except?: ChatId,
): RegisteredChat | undefined {
  let chosen: RegisteredChat | undefined;
  for (const chatId of person) {
    if (chatId === except) continue;
    const entry = get(chatId);
    if (entry === undefined || entry.session_id === null || entry.chat_kind !== "individual") {
      continue;
    }
    if (chosen === undefined || isMoreRecent(entry, chosen.entry)) chosen = { chatId, entry };
  }
  return chosen;
}

/**
 * `entry` joining `person`'s session: the person's name and session id; its own session, when it
 * had one, kept in `previous_session_ids` with its folder's name, so its transcript stays
 * findable (`dispatch sessions show`). Pure.
 */
export function joinedEntry(entry: RegistryEntry, person: RegistryEntry, now: Date): RegistryEntry {
  const left: PreviousSession[] =
    entry.session_id === null || entry.session_id === person.session_id
      ? []
      : [
          {
            session_id: entry.session_id,
            replaced_at: now.toISOString(),
            reason: JOINED_PERSON,
            session_name: entry.session_name,
          },
        ];
  return {
    ...entry,
    session_name: person.session_name,
    session_id: person.session_id,
    previous_session_ids: [...entry.previous_session_ids, ...left],
  };
}

/**
 * The start-up merge: for each person (a contact's chat ids) whose registered chats are in more
 * than one session, every chat joins the session of the most recently active one
 * (`personSessionOf`); the sessions they leave stay on disk, recorded in each chat's
 * `previous_session_ids`. Call before any session starts. Returns the chats that joined.
 */
export function mergePersonSessions(
  registry: Registry,
  people: Iterable<readonly ChatId[]>,
  now: Date,
  logger: Logger,
): ChatId[] {
  const joined: ChatId[] = [];
  const get = (chatId: ChatId) => registry.get(chatId);
  for (const person of people) {
    const target = personSessionOf(person, get);
    if (target === undefined) continue;
    for (const chatId of person) {
      const entry = registry.get(chatId);
      if (entry === undefined || entry.chat_kind !== "individual") continue;
      if (entry.session_name === target.entry.session_name) continue;
      registry.set(chatId, joinedEntry(entry, target.entry, now));
      joined.push(chatId);
      logger.info("session-join", {
        chatId,
        sessionName: target.entry.session_name,
        left: entry.session_name,
        leftSessionId: entry.session_id,
      });
    }
  }
  return joined;
}

/**
 * `registry` as the session manager writes it: an update of a session's own fields (its
 * `session_id`, a new `previous_session_ids` item) reaches every chat of the session, so all of a
 * person's chats point at the session it has now. Everything else is the chat's own.
 */
export function sessionWideRegistry(registry: Registry): Registry {
  return {
    get size() {
      return registry.size;
    },
    get: (chatId) => registry.get(chatId),
    entries: () => registry.entries(),
    isNameTaken: (name) => registry.isNameTaken(name),
    chatsNamed: (name) => registry.chatsNamed(name),
    set: (chatId, entry) => registry.set(chatId, entry),
    update(chatId, patch) {
      const before = registry.get(chatId);
      const updated = registry.update(chatId, patch);
      if (patch.session_id === undefined && patch.previous_session_ids === undefined) {
        return updated;
      }
      // Only what this update added is the session's; a chat's own join record stays its own.
      const added = newItems(before?.previous_session_ids ?? [], updated.previous_session_ids);
      for (const other of registry.chatsNamed(updated.session_name)) {
        if (other === chatId) continue;
        const entry = registry.get(other);
        if (entry === undefined) continue;
        const missing = newItems(entry.previous_session_ids, added);
        registry.update(other, {
          session_id: updated.session_id,
          ...(missing.length > 0
            ? { previous_session_ids: [...entry.previous_session_ids, ...missing] }
            : {}),
        });
      }
      return updated;
    },
    remove: (chatId) => registry.remove(chatId),
    flush: () => registry.flush(),
    close: () => registry.close(),
  };
}

/** The items of `list` that `known` lacks. */
function newItems(
  known: readonly PreviousSession[],
  list: readonly PreviousSession[],
): PreviousSession[] {
  const seen = new Set(known.map((item) => `${item.session_id} ${item.replaced_at}`));
  return list.filter((item) => !seen.has(`${item.session_id} ${item.replaced_at}`));
}

function isMoreRecent(entry: RegistryEntry, than: RegistryEntry): boolean {
  const time = timeOf(entry.last_message_time);
  const other = timeOf(than.last_message_time);
  if (time !== other) return time > other;
  return timeOf(entry.created_at) < timeOf(than.created_at);
}

/** Milliseconds of an ISO date-time; never written (or unreadable) counts as the oldest. */
function timeOf(isoDateTime: string | null): number {
  const ms = isoDateTime === null ? Number.NaN : Date.parse(isoDateTime);
  return Number.isNaN(ms) ? Number.NEGATIVE_INFINITY : ms;
}
