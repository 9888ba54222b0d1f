/**
 * Cases every Registry adapter must pass (unstorage's `testDriver` pattern). Each adapter's test
 * file calls `describeRegistryContract` with a factory for a fresh, empty registry.
 */
import { describe, expect, it } from "vitest";
import { DispatchError } from "../../../src/utils/errors.js";
import { asAgentSessionId, asChatId, asSessionName } from "../../../src/utils/ids.js";
import type { Registry, RegistryEntry } from "../../../src/store/registry.js";
import type { ChatId } from "../../../src/utils/ids.js";
import { makeEntry } from "../../support/registry-entry.js";

export const JOHN = asChatId("+15551234567");
export const JANE = asChatId("jane@example.com");
export const FAMILY = asChatId("chat123456789");

/** The adapters' tests build their entries as every test does. */
export { makeEntry };

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    if (error instanceof DispatchError) return error.code;
    throw error;
  }
  return undefined;
}

export interface RegistryContractHooks {
  /** A fresh, empty registry; the suite closes it. */
  create(): Promise<Registry>;
}

export function describeRegistryContract(adapter: string, hooks: RegistryContractHooks): void {
  describe(`Registry contract: ${adapter}`, () => {
    async function withRegistry(test: (registry: Registry) => Promise<void> | void) {
      const registry = await hooks.create();
      try {
        await test(registry);
      } finally {
        await registry.close();
      }
    }

    it("starts empty", () =>
      withRegistry((registry) => {
        expect(registry.size).toBe(0);
        expect(registry.get(JOHN)).toBeUndefined();
        expect([...registry.entries()]).toEqual([]);
        expect(registry.isNameTaken("john-doe")).toBe(false);
      }));

    it("returns what was set, by chat id", () =>
      withRegistry((registry) => {
        registry.set(JOHN, makeEntry("john-doe"));
        registry.set(FAMILY, makeEntry("family-chat", { chat_kind: "group", contact_name: null }));
        expect(registry.size).toBe(2);
        expect(registry.get(JOHN)).toEqual(makeEntry("john-doe"));
        expect(registry.get(FAMILY)?.chat_kind).toBe("group");
        expect(new Map(registry.entries()).get(FAMILY)?.session_name).toBe("family-chat");
      }));

    it("update merges a patch, ignores undefined values and returns the new entry", () =>
      withRegistry((registry) => {
        registry.set(JOHN, makeEntry("john-doe"));
        const sessionId = asAgentSessionId("abc-123");
        const updated = registry.update(JOHN, {
          session_id: sessionId,
          turns: 3,
          channel: undefined,
        });
        expect(updated.session_id).toBe(sessionId);
        expect(updated.turns).toBe(3);
        expect(updated.contact_name).toBe("John Doe");
        expect(updated.channel).toBeNull();
        expect(registry.get(JOHN)).toEqual(updated);
      }));

    it("update of an unknown chat throws registry_entry_missing", () =>
      withRegistry((registry) => {
        expect(codeOf(() => registry.update(JOHN, { turns: 1 }))).toBe("registry_entry_missing");
        expect(registry.size).toBe(0);
      }));

    it("hands out frozen entries, so a change cannot bypass update()", () =>
      withRegistry((registry) => {
        const original = makeEntry("john-doe");
        registry.set(JOHN, original);
        const entry = registry.get(JOHN) as { turns: number };
        expect(() => {
          entry.turns = 99;
        }).toThrow(TypeError);
        expect(registry.get(JOHN)?.turns).toBe(0);
        // The caller's own object is not frozen or shared.
        expect(Object.isFrozen(original)).toBe(false);
      }));

    it("answers name lookups case-insensitively and keeps them current", () =>
      withRegistry((registry) => {
        registry.set(JOHN, makeEntry("john-doe"));
        expect(registry.isNameTaken("john-doe")).toBe(true);
        expect(registry.isNameTaken("John-Doe")).toBe(true);
        expect(registry.isNameTaken("JOHN-DOE")).toBe(true);
        expect(registry.isNameTaken("jane")).toBe(false);
        // Whole names only: neither a prefix nor a longer name counts as taken.
        expect(registry.isNameTaken("john")).toBe(false);
        expect(registry.isNameTaken("john-doe-2")).toBe(false);
        expect(registry.remove(JOHN)).toBe(true);
        expect(registry.isNameTaken("john-doe")).toBe(false);
        expect(registry.isNameTaken("John-Doe")).toBe(false);
      }));

    it("remove reports whether there was an entry", () =>
      withRegistry((registry) => {
        registry.set(JOHN, makeEntry("john-doe"));
        expect(registry.remove(JANE)).toBe(false);
        expect(registry.remove(JOHN)).toBe(true);
        expect(registry.remove(JOHN)).toBe(false);
        expect(registry.size).toBe(0);
      }));

    it("refuses session names that are not safe folder names", () =>
      withRegistry((registry) => {
        for (const name of [
          "",
          "../etc",
          "a/b",
          "a\\b",
          "x\u0000",
          "John",
          "a.b",
          "x".repeat(61),
        ]) {
          expect(codeOf(() => registry.set(JOHN, makeEntry(name)))).toBe("registry_invalid_entry");
        }
        expect(codeOf(() => registry.set(JOHN, makeEntry("x".repeat(60))))).toBeUndefined();
      }));

    it("refuses a session name another chat holds, in any case", () =>
      withRegistry((registry) => {
        registry.set(JOHN, makeEntry("john-doe"));
        expect(codeOf(() => registry.set(JANE, makeEntry("john-doe")))).toBe(
          "registry_invalid_entry",
        );
        expect(registry.get(JANE)).toBeUndefined();
        // Replacing a chat's own entry under the same name is fine.
        registry.set(JOHN, makeEntry("john-doe", { turns: 5 }));
        expect(registry.get(JOHN)?.turns).toBe(5);
      }));

    it("never renames a session (resume needs the same folder)", () =>
      withRegistry((registry) => {
        registry.set(JOHN, makeEntry("john-doe"));
        expect(codeOf(() => registry.update(JOHN, { session_name: asSessionName("johnny") }))).toBe(
          "registry_invalid_entry",
        );
        expect(codeOf(() => registry.set(JOHN, makeEntry("johnny")))).toBe(
          "registry_invalid_entry",
        );
        expect(registry.get(JOHN)?.session_name).toBe("john-doe");
        expect(registry.isNameTaken("johnny")).toBe(false);
      }));

    it("lets the chats of one person's session share its name, never two sessions one name", () =>
      withRegistry((registry) => {
        const session = asAgentSessionId("11111111-1111-4111-8111-111111111111");
        const other = asAgentSessionId("22222222-2222-4222-8222-222222222222");
        registry.set(JOHN, makeEntry("john-doe", { session_id: session }));
        // Another session, or none yet, cannot take the name.
        expect(codeOf(() => registry.set(JANE, makeEntry("john-doe", { session_id: other })))).toBe(
          "registry_invalid_entry",
        );
        expect(codeOf(() => registry.set(JANE, makeEntry("john-doe")))).toBe(
          "registry_invalid_entry",
        );
        // The same session joins it.
        registry.set(JANE, makeEntry("john-doe", { session_id: session }));
        expect(registry.chatsNamed("JOHN-DOE").sort()).toEqual([JANE, JOHN].sort());
        // A chat with a session of its own may join another one (its person's), only with its id.
        registry.set(FAMILY, makeEntry("family-chat", { session_id: other }));
        expect(
          codeOf(() => registry.update(FAMILY, { session_name: asSessionName("john-doe") })),
        ).toBe("registry_invalid_entry");
        registry.update(FAMILY, { session_name: asSessionName("john-doe"), session_id: session });
        expect(registry.chatsNamed("john-doe")).toHaveLength(3);
        expect(registry.isNameTaken("family-chat")).toBe(false);
        registry.remove(JOHN);
        expect(registry.chatsNamed("john-doe").sort()).toEqual([FAMILY, JANE].sort());
        expect(registry.chatsNamed("nobody")).toEqual([]);
      }));

    it("lets a forgotten chat's name be reused", () =>
      withRegistry((registry) => {
        registry.set(JOHN, makeEntry("john-doe"));
        registry.remove(JOHN);
        registry.set(JANE, makeEntry("john-doe"));
        expect(registry.get(JANE)?.session_name).toBe("john-doe");
      }));

    it("flush resolves, and changes after close() throw registry_closed", async () => {
      const registry = await hooks.create();
      registry.set(JOHN, makeEntry("john-doe"));
      await registry.flush();
      await registry.close();
      await registry.close(); // idempotent
      expect(codeOf(() => registry.set(JANE, makeEntry("jane")))).toBe("registry_closed");
      expect(codeOf(() => registry.update(JOHN, { turns: 1 }))).toBe("registry_closed");
      expect(codeOf(() => registry.remove(JOHN))).toBe("registry_closed");
      expect(registry.get(JOHN)?.session_name).toBe("john-doe");
    });
  });
}

/** A registry that keeps its entries in storage another instance can open. */
export interface DurableRegistry extends Registry {
  /** Reads one chat's stored entry again (a change another instance made). */
  reload(chatId: ChatId): Promise<RegistryEntry | undefined>;
}

export interface DurableRegistryContractHooks {
  /** A registry on fresh, empty storage; the suite closes it. */
  create(): Promise<DurableRegistry>;
  /** Another registry on the storage `create` made last, as a restarted daemon opens it. */
  openAgain(): Promise<DurableRegistry>;
}

/**
 * Cases of the adapters that store entries (SQLite and PostgreSQL rows): what was flushed is what
 * a reopened registry holds, and nothing but the changed rows is written.
 */
export function describeDurableRegistryContract(
  adapter: string,
  hooks: DurableRegistryContractHooks,
): void {
  describe(`Registry contract, durable: ${adapter}`, () => {
    it("a reopened registry holds every flushed change, frozen, names taken", async () => {
      const first = await hooks.create();
      first.set(JOHN, makeEntry("john-doe"));
      first.set(JANE, makeEntry("jane-roe", { contact_name: "Jane Roe" }));
      first.set(FAMILY, makeEntry("family-chat", { chat_kind: "group", contact_name: null }));
      first.update(JOHN, {
        session_id: asAgentSessionId("abc-123"),
        previous_session_ids: [
          {
            session_id: asAgentSessionId("old-1"),
            replaced_at: "2026-02-02T10:00:00.000Z",
            reason: "restart",
          },
        ],
        turns: 4,
      });
      first.remove(JANE);
      await first.flush();
      const second = await hooks.openAgain();
      try {
        expect(new Map(second.entries())).toEqual(new Map(first.entries()));
        expect(second.size).toBe(2);
        expect(second.get(JANE)).toBeUndefined();
        expect(second.isNameTaken("John-Doe")).toBe(true);
        expect(second.isNameTaken("jane-roe")).toBe(false);
        expect(Object.isFrozen(second.get(JOHN))).toBe(true);
        expect(Object.isFrozen(second.get(JOHN)?.previous_session_ids[0])).toBe(true);
      } finally {
        await second.close();
        await first.close();
      }
    });

    it("close() writes bookkeeping that was still waiting for company", async () => {
      const first = await hooks.create();
      first.set(JOHN, makeEntry("john-doe"));
      await first.flush();
      first.update(JOHN, { turns: 7, last_message_time: "2026-02-03T10:00:00.000Z" });
      await first.close();
      const second = await hooks.openAgain();
      try {
        expect(second.get(JOHN)?.turns).toBe(7);
        expect(second.get(JOHN)?.last_message_time).toBe("2026-02-03T10:00:00.000Z");
      } finally {
        await second.close();
      }
    });

    it("keeps the fields of a newer dispatch it does not know", async () => {
      const first = await hooks.create();
      const entry = { ...makeEntry("john-doe"), future_field: { nested: [1, "two"] } };
      first.set(JOHN, entry);
      await first.close();
      const second = await hooks.openAgain();
      try {
        expect(second.get(JOHN)).toEqual(entry);
      } finally {
        await second.close();
      }
    });

    it("a removed chat's name goes to another chat in the same write", async () => {
      const first = await hooks.create();
      first.set(JOHN, makeEntry("john-doe"));
      await first.flush();
      first.remove(JOHN);
      first.set(JANE, makeEntry("john-doe"));
      await first.flush();
      const second = await hooks.openAgain();
      try {
        expect([...second.entries()].map(([chatId]) => chatId)).toEqual([JANE]);
      } finally {
        await second.close();
        await first.close();
      }
    });

    it("reload(chatId) takes another instance's change, but keeps an unwritten one of its own", async () => {
      const first = await hooks.create();
      first.set(JOHN, makeEntry("john-doe"));
      first.set(JANE, makeEntry("jane-roe"));
      await first.flush();
      const second = await hooks.openAgain();
      try {
        second.update(JOHN, { session_id: asAgentSessionId("from-second"), turns: 2 });
        second.remove(JANE);
        second.set(FAMILY, makeEntry("family-chat"));
        await second.flush();

        expect((await first.reload(JOHN))?.session_id).toBe("from-second");
        expect(first.get(JOHN)?.turns).toBe(2);
        expect(Object.isFrozen(first.get(JOHN))).toBe(true);
        expect(await first.reload(JANE)).toBeUndefined();
        expect(first.isNameTaken("jane-roe")).toBe(false);
        expect((await first.reload(FAMILY))?.session_name).toBe("family-chat");
        expect(first.isNameTaken("family-chat")).toBe(true);

        // A change of its own not yet written is newer than the row: it stays, and is written.
        first.update(JOHN, { turns: 9 });
        expect((await first.reload(JOHN))?.turns).toBe(9);
        await first.flush();
        expect((await second.reload(JOHN))?.turns).toBe(9);
      } finally {
        await second.close();
        await first.close();
      }
    });
  });
}
