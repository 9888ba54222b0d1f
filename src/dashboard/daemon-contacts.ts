/**
 * The daemon's side of the dashboard's contacts port: reads contacts.json for the Contacts view,
 * with each handle's chat id and session, and makes changes to it through the one write path
 * (`store/contacts-file-writer.ts`), then hands the new book to the daemon (`apply`) so the next
 * message is answered by it. Changes are made one at a time.
 */
import type { Config } from "../config/schema.js";
import { DispatchError, describeError } from "../utils/errors.js";
import type { ChatId } from "../utils/ids.js";
import { chatKind, normaliseChatId } from "../identity/chat-id.js";
import { applyContactEdit, type ContactEdit } from "../identity/contacts-edit.js";
import type { ContactsFile } from "../identity/contacts-file.js";
import { parseContacts, type ContactBook } from "../identity/contacts.js";
import type { Logger } from "../logging/logger.js";
import { readContactsFile, writeContactsFile } from "../store/contacts-file-writer.js";
import type {
  ContactHandle,
  ContactSession,
  ContactsView,
  DashboardContacts,
} from "./dashboard-contacts.js";
import type { SessionView } from "./dashboard-source.js";

export interface DaemonContactsDeps {
  /** contacts.json. */
  path: string;
  config: Pick<Config, "tiers" | "defaultRegion">;
  /** The registered chats, to say which handles have sessions. */
  listSessions(): Pick<
    SessionView,
    "chat_id" | "session_name" | "contact_name" | "tier" | "state"
  >[];
  /** Puts a book just written into use (the daemon's contacts holder). */
  apply(book: ContactBook): void;
  logger: Logger;
}

export function createDaemonContacts(deps: DaemonContactsDeps): DashboardContacts {
  const { path, config, logger } = deps;
  const knownTiers = Object.keys(config.tiers);
  const region = config.defaultRegion ? { defaultRegion: config.defaultRegion } : {};
  /** The change under way: the next waits for it, so two never read the same version. */
  let changing: Promise<unknown> = Promise.resolve();

  const list = async (): Promise<ContactsView> => {
    const reading = await readContactsFile(path);
    const sessions = new Map(
      deps.listSessions().map((session): [string, ContactSession] => [
        session.chat_id,
        {
          chat_id: session.chat_id,
          session_name: session.session_name,
          contact_name: session.contact_name,
          tier: session.tier,
          state: session.state,
        },
      ]),
    );
    const claimed = new Set<string>();
    const handleOf = (raw: string, kind: "individual" | "group"): ContactHandle => {
      let chatId: string;
      try {
        chatId = normaliseChatId(raw, region);
      } catch (error) {
        return { raw, chat_id: null, problem: describeError(error), session: null };
      }
      if (chatKind(chatId as ChatId) !== kind) {
        const problem =
          kind === "individual"
            ? "Not a phone number or email address; group chats go under groups."
            : "A phone number or email address, not a group chat id.";
        return { raw, chat_id: null, problem, session: null };
      }
      claimed.add(chatId);
      return { raw, chat_id: chatId, problem: null, session: sessions.get(chatId) ?? null };
    };
    const file = reading.file ?? { contacts: [], groups: [] };
    return {
      file: path,
      version: reading.version,
      problems: reading.file === undefined ? reading.problems : problemsOf(reading.file),
      editable: reading.file !== undefined,
      tiers: knownTiers.map((name) => ({ name, answered: config.tiers[name]?.respond === true })),
      contacts: file.contacts.map((contact, index) => ({
        index,
        name: contact.name,
        tier: contact.tier,
        handles: contact.handles.map((raw) => handleOf(raw, "individual")),
      })),
      groups: file.groups.map((group, index) => ({
        index,
        name: group.name,
        tier: group.tier,
        handle: handleOf(group.chat_id, "group"),
      })),
      unlisted: [...sessions.values()].filter((session) => !claimed.has(session.chat_id)),
    };
  };

  /** The loader's problems with a file of the right shape (tiers, handles, duplicates). */
  const problemsOf = (file: ContactsFile): string[] => {
    try {
      parseContacts(file, { knownTiers, ...region, source: path });
      return [];
    } catch (error) {
      return [describeError(error)];
    }
  };

  const change = (edit: ContactEdit, version: string | null): Promise<ContactsView> => {
    const run = async () => {
      const reading = await readContactsFile(path);
      if (reading.file === undefined) {
        throw new DispatchError(
          "contacts_invalid",
          `${path} cannot be changed from the dashboard until it is fixed by hand:\n` +
            reading.problems.map((problem) => `  - ${problem}`).join("\n"),
        );
      }
      if (reading.version !== version) throw changedError();
      const next = applyContactEdit(reading.file, edit);
      const written = await writeContactsFile(path, next, {
        knownTiers,
        ...region,
        expectedVersion: version,
        source: `${path}, with this change,`,
      });
      deps.apply(written.book);
      logger.info("contacts-update", {
        change: edit.kind,
        contacts: next.contacts.length,
        groups: next.groups.length,
        from: "dashboard",
      });
      return list();
    };
    const result = changing.then(run, run);
    changing = result.catch(() => undefined);
    return result;
  };

  const changedError = () =>
    new DispatchError(
      "contacts_changed",
      `${path} changed since this page read it (edited by hand, or from another tab): nothing ` +
        "was saved. The list shows the file as it is now: make the change again.",
    );

  return {
    list,
    add: (contact, version) => change({ kind: "add", contact }, version),
    update: (index, contact, version) => change({ kind: "replace", index, contact }, version),
    remove: (index, version) => change({ kind: "remove", index }, version),
  };
}
