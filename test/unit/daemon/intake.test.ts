import { describe, expect, it } from "vitest";
import type { InboundMessage } from "../../../src/channels/channel.js";
import { validateConfig } from "../../../src/config/load-config.js";
import type { Config } from "../../../src/config/schema.js";
import { prepareDelivery } from "../../../src/daemon/intake.js";
import { parseContacts } from "../../../src/identity/contacts.js";

const context = {
  homeDir: "/home/ada",
  platform: "linux" as const,
  totalMemoryBytes: 8 * 1024 ** 3,
};

function configWith(input: Record<string, unknown> = {}): Config {
  const result = validateConfig(input, context);
  if (!result.ok) throw new Error(result.problems.join("\n"));
  return result.config;
}

const config = configWith({ defaultRegion: "US" });
const contacts = parseContacts(
  {
    contacts: [
      { name: "John Doe", tier: "favorite", handles: ["+1 (555) 123-4567"] },
      { name: "Beep Bot", tier: "bots", handles: ["bot@example.com"] },
    ],
    groups: [{ chat_id: "chat123456789", name: "Family Chat", tier: "family" }],
  },
  { knownTiers: Object.keys(config.tiers), defaultRegion: "US" },
);

function message(overrides: Partial<InboundMessage>): InboundMessage {
  return {
    channel: "http",
    chatId: "+15551234567",
    text: "hello",
    receivedAt: new Date("2026-02-07T14:30:00.000Z"),
    ...overrides,
  };
}

describe("prepareDelivery", () => {
  it("normalises the chat id, finds the contact and gives the text its envelope", () => {
    const delivery = prepareDelivery(message({ chatId: "(555) 123-4567" }), { contacts, config });
    expect(delivery).toMatchObject({
      chatId: "+15551234567",
      text: "hello",
      contactName: "John Doe",
      tier: "favorite",
      chatKind: "individual",
      channel: "http",
      envelope: {
        channel: "http",
        receivedAt: new Date("2026-02-07T14:30:00.000Z"),
        sender: { name: "John Doe", handle: "+15551234567", tier: "favorite" },
      },
    });
    expect(delivery.envelope!.nonce).toMatch(/^[a-z2-7]{16}$/);
    expect(delivery.envelope).not.toHaveProperty("group");
  });

  it("refuses a message whose time is not a real date, as it is recorded", () => {
    expect(() =>
      prepareDelivery(message({ receivedAt: new Date("nope") }), { contacts, config }),
    ).toThrowError(expect.objectContaining({ code: "invalid_message" }));
  });

  it("gives a message the envelope nonce it had every time it is handed over again", () => {
    const nonce = "abcdefghijklm234";
    const first = prepareDelivery(message({}), { contacts, config }, { envelopeNonce: nonce });
    const again = prepareDelivery(message({}), { contacts, config }, { envelopeNonce: nonce });
    expect(first.envelope?.nonce).toBe(nonce);
    expect(again.envelope).toEqual(first.envelope);
    expect(prepareDelivery(message({}), { contacts, config }).envelope?.nonce).not.toBe(nonce);
  });

  it("refuses unknown senders under the default policy, naming the fix", () => {
    expect(() =>
      prepareDelivery(message({ chatId: "+15550001111" }), { contacts, config }),
    ).toThrowError(
      expect.objectContaining({
        code: "unknown_sender",
        message: expect.stringContaining("unknownSenders") as unknown,
      }),
    );
  });

  it("answers unknown senders with the unknown tier when the policy says respond", () => {
    const respond = configWith({ unknownSenders: "respond" });
    const delivery = prepareDelivery(message({ chatId: "+15550001111" }), {
      contacts,
      config: respond,
    });
    expect(delivery).toMatchObject({ tier: "unknown", contactName: null });
  });

  it("refuses a known contact whose tier is not answered", () => {
    expect(() =>
      prepareDelivery(message({ chatId: "BOT@example.com" }), { contacts, config }),
    ).toThrowError(
      expect.objectContaining({
        code: "unknown_sender",
        message: expect.stringContaining("tiers.bots.respond") as unknown,
      }),
    );
  });

  it("treats a group as one chat and names the member who wrote", () => {
    const delivery = prepareDelivery(message({ chatId: "chat123456789", sender: "555-123-4567" }), {
      contacts,
      config,
    });
    expect(delivery).toMatchObject({
      chatId: "chat123456789",
      contactName: "Family Chat",
      tier: "family",
      chatKind: "group",
    });
    expect(delivery.envelope).toMatchObject({
      group: { name: "Family Chat", chatId: "chat123456789" },
      sender: { name: "John Doe", handle: "+15551234567", tier: "favorite" },
    });
  });

  it("rejects a chat id that tries to escape a folder", () => {
    expect(() =>
      prepareDelivery(message({ chatId: "../../etc/passwd" }), { contacts, config }),
    ).toThrowError(expect.objectContaining({ code: "invalid_chat_id" }));
  });
});
