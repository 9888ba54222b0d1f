import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  FALLBACK_SESSION_NAME,
  MAX_SESSION_NAME_BASE_LENGTH,
  MAX_SESSION_NAME_LENGTH,
  createSessionName,
  isSafeSessionName,
} from "../../../src/identity/session-name.js";

/** Taken names as the registry keeps them: compared case-insensitively. */
function takenAmong(names: readonly string[]): (name: string) => boolean {
  const lowerCase = new Set(names.map((name) => name.toLowerCase()));
  return (name) => lowerCase.has(name.toLowerCase());
}

const none = takenAmong([]);

/** Any UTF-16 code unit, so lone surrogates, NUL and control characters turn up. */
const codeUnitString = fc.string({
  unit: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)),
});
const anyName = fc.oneof(
  fc.string(),
  fc.string({ unit: "grapheme", maxLength: 80 }),
  fc.string({ unit: "binary" }),
  codeUnitString,
  fc.constantFrom("John Doe", "../..", "con", "chat", "a".repeat(200), "😀", "中文"),
);

describe("createSessionName", () => {
  it.each([
    ["John Doe", "john-doe"],
    ["Zoë Ångström", "zoe-angstrom"],
    ["José María O'Brien-Núñez", "jose-maria-o-brien-nunez"],
    ["Jürgen Straße", "jurgen-strasse"],
    ["Søren Łukasz Æsir", "soren-lukasz-aesir"],
    ["ＪＯＨＮ　ＤＯＥ", "john-doe"],
    ["  --John__Doe--  ", "john-doe"],
    ["Dr. J. Doe, Jr.", "dr-j-doe-jr"],
    ["Mom ❤️", "mom"],
    ["Agent 007", "agent-007"],
    ["😀🎉", FALLBACK_SESSION_NAME],
    ["../..", FALLBACK_SESSION_NAME],
    ["中文", FALLBACK_SESSION_NAME],
    ["", FALLBACK_SESSION_NAME],
    ["\u0000/\\", FALLBACK_SESSION_NAME],
  ])("%j -> %s", (contactName, expected) => {
    expect(createSessionName(contactName, none)).toBe(expected);
  });

  it("cuts long names to 48 characters without a trailing dash", () => {
    const name = createSessionName(`${"a".repeat(47)} bcd`, none);
    expect(name).toBe("a".repeat(47));
    expect(createSessionName("x".repeat(100), none)).toHaveLength(MAX_SESSION_NAME_BASE_LENGTH);
  });

  it("adds -2, -3, ... to avoid names already taken, ignoring case", () => {
    expect(createSessionName("John Doe", takenAmong(["John-Doe"]))).toBe("john-doe-2");
    expect(createSessionName("John Doe", takenAmong(["john-doe", "JOHN-DOE-2"]))).toBe(
      "john-doe-3",
    );
    expect(createSessionName("🎉", takenAmong(["chat"]))).toBe("chat-2");
    // A suffix on the 48-character cut still fits the stored-name limit.
    const long = createSessionName("y".repeat(60), takenAmong(["y".repeat(48)]));
    expect(long).toBe(`${"y".repeat(48)}-2`);
  });

  it("avoids Windows device names", () => {
    expect(createSessionName("CON", none)).toBe("con-2");
    expect(createSessionName("nul", none)).toBe("nul-2");
    expect(createSessionName("Com 1", none)).toBe("com-1");
    expect(createSessionName("com1", none)).toBe("com1-2");
  });

  it("always returns a safe, new name of at most 60 characters", () => {
    fc.assert(
      fc.property(anyName, fc.array(anyName, { maxLength: 5 }), (contactName, others) => {
        // Take the natural name and some suffixes in random case, to force the suffix path.
        const natural = createSessionName(contactName, none);
        const takenNames = [
          ...others,
          natural.toUpperCase(),
          `${natural}-2`,
          `${natural}-3`.toUpperCase(),
        ];
        const name = createSessionName(contactName, takenAmong(takenNames));
        expect(isSafeSessionName(name)).toBe(true);
        expect(name.length).toBeLessThanOrEqual(MAX_SESSION_NAME_LENGTH);
        expect(name).not.toMatch(/[/\\\0]|\.\./);
        const takenLowerCase = takenNames.map((taken) => taken.toLowerCase());
        expect(takenLowerCase).not.toContain(name);
      }),
      { numRuns: 1000 },
    );
  });

  it("is a pure function of its inputs", () => {
    fc.assert(
      fc.property(anyName, (contactName) => {
        expect(createSessionName(contactName, none)).toBe(createSessionName(contactName, none));
      }),
    );
  });
});

describe("isSafeSessionName", () => {
  it.each(["john-doe", "john-doe-2", "chat", "a", "007", "a".repeat(MAX_SESSION_NAME_LENGTH)])(
    "accepts %j",
    (name) => {
      expect(isSafeSessionName(name)).toBe(true);
    },
  );

  it.each([
    "",
    ".",
    "..",
    "../etc",
    "a/b",
    "a\\b",
    "a\u0000b",
    "John",
    "-john",
    "john-",
    "john--doe",
    "john doe",
    "john.doe",
    "con",
    "lpt9",
    "a".repeat(MAX_SESSION_NAME_LENGTH + 1),
  ])("rejects %j", (name) => {
    expect(isSafeSessionName(name)).toBe(false);
  });

  it("accepts only names made of lower-case letters and digits joined by single dashes", () => {
    fc.assert(
      fc.property(anyName, (name) => {
        const grammar = /^[a-z0-9]+(-[a-z0-9]+)*$/.test(name) && name.length <= 60;
        if (!grammar) expect(isSafeSessionName(name)).toBe(false);
        if (isSafeSessionName(name)) expect(name).not.toMatch(/[/\\\0.]/);
      }),
    );
  });
});
