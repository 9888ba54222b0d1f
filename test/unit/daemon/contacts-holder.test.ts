import { describe, expect, it } from "vitest";
import { asChatId } from "../../../src/utils/ids.js";
import { createContactsHolder } from "../../../src/daemon/contacts-holder.js";
import { emptyContactBook, parseContacts } from "../../../src/identity/contacts.js";

const JOHN = asChatId("+15551234567");

describe("createContactsHolder", () => {
  it("answers from the book it holds, and from a new one as soon as it is replaced", () => {
    const holder = createContactsHolder(emptyContactBook());
    expect(holder.lookup(JOHN)).toBeUndefined();
    expect(holder.size).toBe(0);
    const book = parseContacts(
      { contacts: [{ name: "John Doe", tier: "favorite", handles: [JOHN] }] },
      { knownTiers: ["favorite"] },
    );
    holder.replace(book);
    expect(holder.lookup(JOHN)).toMatchObject({ name: "John Doe", tier: "favorite" });
    expect(holder.size).toBe(1);
    expect(holder.entries()).toBe(book.entries());
    expect(holder.current()).toBe(book);
  });
});
