import { describe, expect, it } from "vitest";
import { chatKind, normaliseChatId } from "../../../src/identity/chat-id.js";
import { parseContacts } from "../../../src/identity/contacts.js";
import { signalTargetOf } from "../../../src/identity/signal-address.js";
import { DEFAULT_TIERS } from "../../../src/utils/ids.js";

const UUID = "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D";
const GROUP = "+bE4U3zEhCjHKSaPzWImMpnCbU8A1r0/Pmpi+EfPWms=";

describe("Signal chat ids", () => {
  it("keys a number-less Signal account as signal:<uuid>, an individual", () => {
    const chatId = normaliseChatId(` Signal:${UUID} `);
    expect(chatId).toBe(`signal:${UUID.toLowerCase()}`);
    expect(chatKind(chatId)).toBe("individual");
    expect(signalTargetOf(chatId)).toEqual({ recipient: UUID.toLowerCase() });
  });

  it("keys a Signal group in base64url and gives signal-cli its base64 back", () => {
    const chatId = normaliseChatId(`signal-group:${GROUP}`);
    expect(chatId).toBe("signal-group:-bE4U3zEhCjHKSaPzWImMpnCbU8A1r0_Pmpi-EfPWms=");
    expect(normaliseChatId(chatId)).toBe(chatId);
    expect(chatKind(chatId)).toBe("group");
    expect(signalTargetOf(chatId)).toEqual({ groupId: GROUP });
  });

  it("sends to a phone number as it is and has no target for other channels' ids", () => {
    expect(signalTargetOf("+15551234567")).toEqual({ recipient: "+15551234567" });
    expect(signalTargetOf("jane@example.com")).toBeUndefined();
    expect(signalTargetOf("chat123456789")).toBeUndefined();
  });

  it("refuses a prefix followed by something else, saying what it should hold", () => {
    expect(() => normaliseChatId("signal:not-a-uuid")).toThrow(/a Signal account id \(a UUID\)/);
    expect(() => normaliseChatId("signal-group:short")).toThrow(/a Signal group id in base64/);
  });

  it("lets contacts.json list a Signal account among a person's handles, and a group", () => {
    const book = parseContacts(
      {
        contacts: [
          { name: "Jane Roe", tier: "family", handles: ["+15557654321", `signal:${UUID}`] },
        ],
        groups: [{ chat_id: `signal-group:${GROUP}`, name: "Family", tier: "family" }],
      },
      { knownTiers: DEFAULT_TIERS },
    );
    expect(book.lookup(normaliseChatId(`signal:${UUID.toLowerCase()}`))?.name).toBe("Jane Roe");
    expect(
      book.lookup(normaliseChatId("signal-group:-bE4U3zEhCjHKSaPzWImMpnCbU8A1r0_Pmpi-EfPWms="))
        ?.name,
    ).toBe("Family");
  });
});
