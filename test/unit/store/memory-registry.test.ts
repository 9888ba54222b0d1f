import { describe, expect, it } from "vitest";
import { createMemoryRegistry } from "../../../src/store/memory-registry.js";
import { asAgentSessionId, asChatId } from "../../../src/utils/ids.js";
import { describeRegistryContract, FAMILY, JANE, JOHN, makeEntry } from "./registry-contract.js";

const SECOND = asChatId("jane@example.org");

describeRegistryContract("memory", { create: () => Promise.resolve(createMemoryRegistry()) });

describe("MemoryRegistry", () => {
  it("counts a write only for a flush that had changes to cover", async () => {
    const registry = createMemoryRegistry();
    await registry.flush();
    expect(registry.writes).toBe(0);

    registry.set(JOHN, makeEntry("john-doe"));
    registry.update(JOHN, { turns: 1 });
    expect(registry.isDirty).toBe(true);
    await registry.flush();
    await registry.flush();
    expect(registry.writes).toBe(1);
    expect(registry.isDirty).toBe(false);

    registry.remove(JANE); // nothing removed: no change
    expect(registry.isDirty).toBe(false);
  });

  it("calls onChange once per change", () => {
    let changes = 0;
    const registry = createMemoryRegistry({ onChange: () => (changes += 1) });
    registry.set(JOHN, makeEntry("john-doe"));
    registry.update(JOHN, { turns: 2 });
    registry.remove(JOHN);
    registry.remove(JOHN);
    expect(changes).toBe(3);
  });

  it("loads duplicate names from storage and reports those that are not one session", () => {
    const registry = createMemoryRegistry();
    const session = asAgentSessionId("11111111-1111-4111-8111-111111111111");
    registry.load(JOHN, makeEntry("john-doe"));
    registry.load(JANE, makeEntry("john-doe"));
    expect(registry.duplicateNames()).toEqual(["john-doe"]);
    // One person's chats share a name and a session id: not a duplicate.
    registry.load(FAMILY, makeEntry("jane-doe", { session_id: session }));
    registry.load(SECOND, makeEntry("jane-doe", { session_id: session }));
    expect(registry.duplicateNames()).toEqual(["john-doe"]);
    registry.remove(JOHN);
    // Still held by Jane.
    expect(registry.isNameTaken("john-doe")).toBe(true);
    expect(registry.duplicateNames()).toEqual([]);
  });
});
