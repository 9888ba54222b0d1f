import { describe, expect, it } from "vitest";
import { RateLimitedError } from "../../../src/channels/http/http-errors.js";
import { asChatId } from "../../../src/utils/ids.js";
import { createIntakeLimits, type Arrival } from "../../../src/daemon/intake-limits.js";

function setup(options: { perChat?: number; newChats?: number } = {}) {
  let time = 1_000;
  const limits = createIntakeLimits({
    messagesPerChatPerMinute: options.perChat ?? 30,
    newUnknownChatsPerMinute: options.newChats ?? 20,
    now: () => time,
  });
  return {
    limits,
    advance: (ms: number) => {
      time += ms;
    },
  };
}

const stranger = (index: number, registered = false): Arrival => ({
  chatId: asChatId(`stranger-${index}@example.com`),
  tier: "unknown",
  registered,
});
const john: Arrival = { chatId: asChatId("+15551234567"), tier: "favorite", registered: false };

/** The error `admit` threw, or undefined when it admitted the message. */
function refusal(admit: () => void): RateLimitedError | undefined {
  try {
    admit();
    return undefined;
  } catch (error) {
    if (error instanceof RateLimitedError) return error;
    throw error;
  }
}

describe("intake limits", () => {
  it("gives each chat its budget a minute, naming the chat, the key and the wait", () => {
    const { limits, advance } = setup({ perChat: 3 });
    for (let index = 0; index < 3; index++) limits.admit(john);
    const refused = refusal(() => limits.admit(john));
    expect(refused?.code).toBe("rate_limited");
    expect(refused?.retryAfterMs).toBe(20_000);
    expect(refused?.message).toBe(
      "Chat +15551234567 sent more than 3 messages a minute (`messagesPerChatPerMinute`); try again in 20 s.",
    );
    // Another chat has its own budget; this one gets a token back after 60 s / 3.
    expect(refusal(() => limits.admit({ ...john, chatId: asChatId("+15559876543") }))).toBe(
      undefined,
    );
    advance(20_000);
    expect(refusal(() => limits.admit(john))).toBe(undefined);
  });

  it("takes at most the bound of new strangers in any minute, and tells the rest when to come back", () => {
    const { limits, advance } = setup({ newChats: 3 });
    limits.admit(stranger(1));
    advance(10_000);
    limits.admit(stranger(2));
    limits.admit(stranger(3));
    advance(5_000);
    const refused = refusal(() => limits.admit(stranger(4)));
    expect(refused?.code).toBe("too_many_new_chats");
    // The first admission leaves the window 60 s after it: 45 s from now.
    expect(refused?.retryAfterMs).toBe(45_000);
    expect(refused?.message).toContain("`newUnknownChatsPerMinute`");
    expect(refused?.message).toContain("try again in 45 s, or add stranger-4@example.com");
    advance(44_999);
    expect(refusal(() => limits.admit(stranger(4)))?.code).toBe("too_many_new_chats");
    advance(1);
    expect(refusal(() => limits.admit(stranger(4)))).toBe(undefined);
    // Strangers 2 and 3 still fill the window until 70 s after the start.
    expect(refusal(() => limits.admit(stranger(5)))?.retryAfterMs).toBe(10_000);
  });

  it("counts a new stranger once: its next messages are taken while the window is full", () => {
    const { limits } = setup({ newChats: 1 });
    limits.admit(stranger(1));
    expect(refusal(() => limits.admit(stranger(1)))).toBe(undefined);
    expect(refusal(() => limits.admit(stranger(2)))?.code).toBe("too_many_new_chats");
  });

  it("never counts contacts or strangers dispatch already knows", () => {
    const { limits } = setup({ newChats: 1 });
    limits.admit(stranger(1));
    expect(refusal(() => limits.admit(john))).toBe(undefined);
    expect(refusal(() => limits.admit({ ...john, tier: "admin" }))).toBe(undefined);
    expect(refusal(() => limits.admit(stranger(2, true)))).toBe(undefined);
    expect(refusal(() => limits.admit(stranger(3)))?.code).toBe("too_many_new_chats");
  });

  it("charges nothing for a refusal: neither the chat's budget nor a new-chat place", () => {
    const { limits, advance } = setup({ perChat: 1, newChats: 1 });
    limits.admit(stranger(1));
    // Refused as one new chat too many: its own budget stays full for when it is let in.
    expect(refusal(() => limits.admit(stranger(2)))?.code).toBe("too_many_new_chats");
    advance(60_000);
    limits.admit(stranger(2));
    advance(60_000);
    // A new stranger refused for its chat's budget (the id wrote before, as a contact's would
    // have) does not take the minute's one place.
    const reused = { ...stranger(3), chatId: john.chatId };
    limits.admit(john);
    expect(refusal(() => limits.admit(reused))?.code).toBe("rate_limited");
    expect(refusal(() => limits.admit(stranger(4)))).toBe(undefined);
  });
});
