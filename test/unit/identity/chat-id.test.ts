import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DispatchError } from "../../../src/utils/errors.js";
import { asChatId } from "../../../src/utils/ids.js";
import {
  MAX_CHAT_ID_LENGTH,
  chatKind,
  normaliseChatId,
  type NormaliseChatIdOptions,
} from "../../../src/identity/chat-id.js";

const US: NormaliseChatIdOptions = { defaultRegion: "US" };

function rejection(raw: string, options?: NormaliseChatIdOptions): DispatchError {
  try {
    normaliseChatId(raw, options);
  } catch (error) {
    expect(error).toBeInstanceOf(DispatchError);
    expect((error as DispatchError).code).toBe("invalid_chat_id");
    return error as DispatchError;
  }
  throw new Error(`expected ${JSON.stringify(raw)} to be rejected`);
}

/** Any UTF-16 code unit, so lone surrogates and control characters turn up. */
const codeUnitString = fc.string({
  unit: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)),
});
const anyString = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.string({ unit: "grapheme" }),
  codeUnitString,
  fc.stringMatching(/^[\s+0-9().\-/]{0,20}$/),
);

describe("normaliseChatId: phone numbers", () => {
  it.each([
    ["+1 (555) 123-4567", undefined, "+15551234567"],
    ["555.123.4567", US, "+15551234567"],
    ["(555) 123-4567", US, "+15551234567"],
    ["tel:+15551234567", undefined, "+15551234567"],
    ["TEL:+1-555-123-4567", undefined, "+15551234567"],
    ["00 44 20 7946 0958", undefined, "+442079460958"],
    ["0044 20 7946 0958", US, "+442079460958"],
    ["011 44 20 7946 0958", US, "+442079460958"],
    ["+44 (0)20 7946 0958", undefined, "+442079460958"],
    ["020 7946 0958", { defaultRegion: "GB" }, "+442079460958"],
    ["+1 555 123 4567", undefined, "+15551234567"],
    ["  +15551234567\n", undefined, "+15551234567"],
    ["＋１ ５５５ １２３ ４５６７", undefined, "+15551234567"],
    ["+١ ٥٥٥ ١٢٣ ٤٥٦٧", undefined, "+15551234567"],
    ["+1 ५५५ १२३ ४५६७", undefined, "+15551234567"],
    ["+1 555‐123‐4567", undefined, "+15551234567"],
    ["+1 555—123—4567", undefined, "+15551234567"],
    ["\u202a+1 (555) 123-4567\u202c", undefined, "+15551234567"],
  ] as const)("%j -> %s", (raw, options, expected) => {
    expect(normaliseChatId(raw, options)).toBe(expected);
  });

  it("maps every common way of writing one number to one chat id", () => {
    const digit = fc.integer({ min: 0, max: 9 });
    const leading = fc.integer({ min: 2, max: 9 });
    const usNumber = fc
      .tuple(
        leading,
        digit,
        digit,
        leading,
        digit,
        digit,
        fc.array(digit, { minLength: 4, maxLength: 4 }),
      )
      .map((parts) => parts.flat().join(""));
    const toFullWidth = (text: string) =>
      text.replace(/[0-9+]/g, (c) => String.fromCodePoint(c.codePointAt(0)! + 0xfee0));
    const toArabicIndic = (text: string) =>
      text.replace(/[0-9]/g, (c) => String.fromCodePoint(0x660 + Number(c)));
    fc.assert(
      fc.property(usNumber, (digits) => {
        const [area, exchange, line] = [digits.slice(0, 3), digits.slice(3, 6), digits.slice(6)];
        const writings = [
          `+1${digits}`,
          `+1 (${area}) ${exchange}-${line}`,
          `${area}.${exchange}.${line}`,
          `1-${area}-${exchange}-${line}`,
          `tel:+1-${area}-${exchange}-${line}`,
          `001 ${area} ${exchange} ${line}`,
          `011 1 ${area} ${exchange} ${line}`,
          `+1 ${area}\u2010${exchange}\u2013${line}`,
          toFullWidth(`+1 ${area} ${exchange} ${line}`),
          toArabicIndic(`+1 ${area} ${exchange} ${line}`),
          `\u202a+1 (${area}) ${exchange}-${line}\u202c`,
        ];
        const ids = new Set(writings.map((writing) => normaliseChatId(writing, US)));
        expect([...ids]).toEqual([`+1${digits}`]);
      }),
    );
  });

  it("accepts numbers that are possible but not valid (the 555 fiction range)", () => {
    expect(normaliseChatId("+1 555 123 4567")).toBe("+15551234567");
    expect(normaliseChatId("+1 555 000 0000")).toBe("+15550000000");
  });

  it("treats a bare digit string as a phone attempt, so a short one is an error", () => {
    expect(rejection("12", US).message).toMatch(/not a possible phone number/);
    expect(rejection("(12)", US).message).toMatch(/not a possible phone number/);
    expect(rejection("+12").message).toMatch(/not a possible phone number/);
    expect(rejection("+1555123456789999").message).toMatch(/not a possible phone number/);
  });

  it("asks for defaultRegion when a number has no country code and none is configured", () => {
    const error = rejection("555.123.4567");
    expect(error.message).toContain("defaultRegion");
    expect(error.message).toContain("config.json");
  });

  it("rejects extensions, letters and a misplaced plus in a phone attempt", () => {
    expect(rejection("+1 555 123 4567 ext 5").message).toMatch(/digits and phone punctuation/);
    expect(rejection("+1-800-FLOWERS").message).toMatch(/digits and phone punctuation/);
    expect(rejection("tel:+15551234567;ext=1").message).toMatch(/digits and phone punctuation/);
    expect(rejection("555+1234567", US).message).toMatch(/"\+" may only come first/);
    expect(rejection("()").message).toMatch(/without digits/);
    expect(rejection("-").message).toMatch(/without digits/);
  });

  it("never turns a string of digits and phone punctuation into a group id", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9 ()+.-]{1,30}$/), (raw) => {
        try {
          expect(normaliseChatId(raw, US)).toMatch(/^\+[0-9]+$/);
        } catch (error) {
          expect((error as DispatchError).code).toBe("invalid_chat_id");
        }
      }),
    );
  });
});

describe("normaliseChatId: emails", () => {
  it("trims and lower-cases", () => {
    expect(normaliseChatId("  John.Doe@Example.COM \t")).toBe("john.doe@example.com");
    expect(normaliseChatId("mailto:John@Example.com")).toBe("john@example.com");
    expect(normaliseChatId("+1@example.com")).toBe("+1@example.com");
  });

  it("normalises any well-formed address to its lower-case form", () => {
    fc.assert(
      fc.property(
        fc.emailAddress().filter((address) => address.length <= MAX_CHAT_ID_LENGTH),
        (address) => {
          expect(normaliseChatId(` ${address.toUpperCase()} `)).toBe(address.toLowerCase());
        },
      ),
    );
  });

  it.each([
    "john doe@example.com",
    "john@exa mple.com",
    "john@localhost",
    "@example.com",
    "a@@b.com",
  ])("rejects %j", (raw) => {
    expect(rejection(raw).message).toMatch(/email/);
  });
});

describe("normaliseChatId: group chat ids", () => {
  it("keeps group ids exactly, apart from surrounding whitespace", () => {
    expect(normaliseChatId("chat123456789")).toBe("chat123456789");
    expect(normaliseChatId("  iMessage;+;chat123 ")).toBe("iMessage;+;chat123");
    expect(normaliseChatId("Chat ABC")).toBe("Chat ABC");
  });

  it("keeps any id made of letters, digits and separators unchanged", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z][A-Za-z0-9;+_.:-]{0,80}$/), (raw) => {
        fc.pre(raw !== "." && raw !== "..");
        expect(normaliseChatId(raw)).toBe(raw);
      }),
    );
  });

  it.each([
    ["", /empty/],
    ["   ", /empty/],
    [".", /directory/],
    ["..", /directory/],
    ["chat/123", /"\/"/],
    ["chat\\123", /"\\"/],
    ["chat\u0000123", /control character/],
    ["chat\n123", /control character/],
    ["chat\u007f123", /control character/],
    ["chat\u2028123", /control character/],
    ["chat\ud800123", /lone surrogate/],
    ["chat\u200b123", /invisible/],
    ["c".repeat(MAX_CHAT_ID_LENGTH + 1), /longer than 256/],
  ])("rejects %j", (raw, reason) => {
    const error = rejection(raw);
    expect(error.message).toMatch(reason);
    // Every rejection also says what a valid id looks like.
    expect(error.message).toContain("+15551234567");
  });

  it("accepts an id of exactly the maximum length", () => {
    const longest = "c".repeat(MAX_CHAT_ID_LENGTH);
    expect(normaliseChatId(`  ${longest}  `)).toBe(longest);
  });
});

describe("normaliseChatId: any input", () => {
  it("either rejects with invalid_chat_id or returns a clean, stable id", () => {
    fc.assert(
      fc.property(anyString, fc.constantFrom(undefined, "US", "GB", "DE"), (raw, region) => {
        const options = region === undefined ? {} : { defaultRegion: region };
        let chatId;
        try {
          chatId = normaliseChatId(raw, options);
        } catch (error) {
          expect(error).toBeInstanceOf(DispatchError);
          expect((error as DispatchError).code).toBe("invalid_chat_id");
          return;
        }
        expect(chatId.length).toBeGreaterThan(0);
        expect(chatId.length).toBeLessThanOrEqual(MAX_CHAT_ID_LENGTH);
        expect(chatId).toBe(chatId.trim());
        expect(chatId).not.toMatch(/[\p{Cc}\p{Cs}]/u);
        expect([".", ".."]).not.toContain(chatId);
        if (chatKind(chatId) === "group") expect(chatId).not.toMatch(/[/\\]/);
        // Normalising twice changes nothing: stored ids can be fed back in safely.
        expect(normaliseChatId(chatId, options)).toBe(chatId);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("chatKind", () => {
  it("calls phone numbers and emails individuals and everything else a group", () => {
    expect(chatKind(normaliseChatId("+1 555 123 4567"))).toBe("individual");
    expect(chatKind(normaliseChatId("John@example.com"))).toBe("individual");
    expect(chatKind(normaliseChatId("chat123456789"))).toBe("group");
    expect(chatKind(normaliseChatId("iMessage;+;chat123"))).toBe("group");
    expect(chatKind(asChatId("family"))).toBe("group");
  });
});

describe("normaliseChatId: remembered results", () => {
  it("keeps the region in what it remembers: a number known for US still needs a region", () => {
    expect(normaliseChatId("(555) 867-5309", US)).toBe("+15558675309");
    expect(normaliseChatId("(555) 867-5309", US)).toBe("+15558675309");
    expect(normaliseChatId("(555) 867-5309", { defaultRegion: "GB" })).not.toBe("+15558675309");
    rejection("(555) 867-5309");
  });

  it("still answers right after more distinct ids than it keeps, old ones included", () => {
    const numbers = Array.from(
      { length: 2_500 },
      (_, index) => `+1555${String(index).padStart(7, "0")}`,
    );
    for (const number of numbers) expect(normaliseChatId(` ${number} `)).toBe(number);
    expect(normaliseChatId(` ${numbers[0]!} `)).toBe(numbers[0]);
    rejection("12");
    rejection("12");
  });
});
