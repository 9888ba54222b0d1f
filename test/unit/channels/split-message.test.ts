import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { splitMessage } from "../../../src/channels/split-message.js";

describe("splitMessage", () => {
  it("keeps a short reply whole", () => {
    expect(splitMessage("Hello there.", 100)).toEqual(["Hello there."]);
  });

  it("prefers paragraph breaks", () => {
    const text = `${"a".repeat(40)}.\n\n${"b".repeat(40)}. ${"c".repeat(10)}.`;
    expect(splitMessage(text, 70)).toEqual([
      `${"a".repeat(40)}.`,
      `${"b".repeat(40)}. ${"c".repeat(10)}.`,
    ]);
  });

  it("falls back to sentence ends, then spaces", () => {
    expect(splitMessage("One sentence here. Another one follows. And a third.", 40)).toEqual([
      "One sentence here. Another one follows.",
      "And a third.",
    ]);
    expect(splitMessage("word ".repeat(20).trim(), 22)).toEqual([
      "word word word word",
      "word word word word",
      "word word word word",
      "word word word word",
      "word word word word",
    ]);
  });

  it("cuts a run without breaks hard, never inside a surrogate pair", () => {
    const parts = splitMessage("😀".repeat(10), 5);
    for (const part of parts) {
      expect(part.length).toBeLessThanOrEqual(5);
      expect(part).toMatch(/^(😀)+$/u);
    }
    expect(parts.join("")).toBe("😀".repeat(10));
  });

  it("never exceeds the limit and loses no non-space character", () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 2_000 }),
        fc.integer({ min: 2, max: 300 }),
        (text, limit) => {
          const parts = splitMessage(text, limit);
          for (const part of parts) {
            expect(part.length).toBeLessThanOrEqual(limit);
            expect(part.length).toBeGreaterThan(0);
          }
          expect(parts.join("").replace(/\s/g, "")).toBe(text.replace(/\s/g, ""));
        },
      ),
    );
  });
});
