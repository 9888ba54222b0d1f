import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeAttributedBody } from "../../../src/channels/imessage/attributed-body.js";
import { encodeAttributedBody } from "../../support/chat-db.js";

/**
 * "Hi" as Messages archives it, written out byte by byte from the known layout rather than by
 * the test encoder, so a mistake shared by encoder and decoder cannot hide.
 */
const HI_FROM_MESSAGES = Buffer.from(
  "040b73747265616d747970656481e803840140848484124e5341747472696275746564537472696e6700" +
    "8484084e534f626a656374008592848484084e53537472696e67019484012b024869" +
    "8684026949010292848484" +
    "0c4e5344696374696f6e617279009484016901928496961d5f5f6b494d4d657373616765506172744174" +
    "747269627574654e616d658692848484084e534e756d626572008484074e5356616c7565009484012a" +
    "84999900868686",
  "hex",
);

describe("decodeAttributedBody", () => {
  it("reads a blob laid out as Messages writes it", () => {
    expect(decodeAttributedBody(HI_FROM_MESSAGES)).toBe("Hi");
    expect(encodeAttributedBody("Hi").equals(HI_FROM_MESSAGES)).toBe(true);
  });

  it("handles one-byte, two-byte (0x81) and four-byte (0x82) lengths", () => {
    const short = "a".repeat(127);
    const medium = "b".repeat(128);
    const long = "c".repeat(40_000);
    expect(encodeAttributedBody(short).includes(Buffer.from([0x2b, 127]))).toBe(true);
    expect(encodeAttributedBody(medium).includes(Buffer.from([0x2b, 0x81, 128, 0]))).toBe(true);
    expect(encodeAttributedBody(long).includes(Buffer.from([0x2b, 0x82]))).toBe(true);
    expect(decodeAttributedBody(encodeAttributedBody(short))).toBe(short);
    expect(decodeAttributedBody(encodeAttributedBody(medium))).toBe(medium);
    expect(decodeAttributedBody(encodeAttributedBody(long))).toBe(long);
  });

  it("reads a 0x81 length above 32767 written unsigned by other tools", () => {
    const text = "d".repeat(40_000);
    const bytes = Buffer.concat([
      HI_FROM_MESSAGES.subarray(0, HI_FROM_MESSAGES.indexOf(Buffer.from([0x2b, 0x02])) + 1),
      Buffer.from([0x81, 40_000 & 0xff, 40_000 >> 8]),
      Buffer.from(text),
    ]);
    expect(decodeAttributedBody(bytes)).toBe(text);
  });

  it("reads UTF-8 beyond ASCII: accents, CJK, emoji with joiners", () => {
    for (const text of ["café ☕", "你好，世界", "👨‍👩‍👧‍👦 family", "🇳🇱🏳️‍🌈"]) {
      expect(decodeAttributedBody(encodeAttributedBody(text))).toBe(text);
    }
  });

  it("reads the mutable (NSMutableAttributedString) form", () => {
    const blob = encodeAttributedBody("edited text", { mutable: true });
    expect(blob.includes(Buffer.from("NSMutableString"))).toBe(true);
    expect(decodeAttributedBody(blob)).toBe("edited text");
  });

  it("accepts a Uint8Array view into a larger buffer", () => {
    const padded = Buffer.concat([Buffer.from([1, 2, 3]), HI_FROM_MESSAGES]);
    const view = new Uint8Array(padded.buffer, padded.byteOffset + 3, HI_FROM_MESSAGES.length);
    expect(decodeAttributedBody(view)).toBe("Hi");
  });

  it("returns undefined for what it cannot read", () => {
    const valid = encodeAttributedBody("hello there");
    const textAt = valid.indexOf(Buffer.from("hello"));
    const invalidUtf8 = Buffer.from(valid);
    invalidUtf8[textAt] = 0xff;
    const tagAsLength = Buffer.from(valid);
    tagAsLength[textAt - 1] = 0x85;
    const cases: [string, Buffer][] = [
      ["empty", Buffer.alloc(0)],
      ["not a typedstream", Buffer.from("hello there")],
      ["a bplist", Buffer.from("bplist00hello")],
      ["the header alone", valid.subarray(0, 13)],
      ["no NSString", Buffer.concat([valid.subarray(0, 13), Buffer.alloc(40)])],
      ["cut inside the text", valid.subarray(0, textAt + 4)],
      ["cut at the length", valid.subarray(0, textAt - 1)],
      ["invalid UTF-8", invalidUtf8],
      ["a tag where the length goes", tagAsLength],
    ];
    for (const [name, blob] of cases) {
      expect(decodeAttributedBody(blob), name).toBeUndefined();
    }
  });

  it("never throws on random bytes, with or without a plausible prefix", () => {
    const prefix = HI_FROM_MESSAGES.subarray(
      0,
      HI_FROM_MESSAGES.indexOf(Buffer.from([0x2b, 0x02])),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, withPrefix) => {
        const blob = withPrefix ? Buffer.concat([prefix, bytes]) : Buffer.from(bytes);
        const decoded = decodeAttributedBody(blob);
        expect(decoded === undefined || typeof decoded === "string").toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it("round-trips any string through the Messages encoding", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 400 }), fc.boolean(), (text, mutable) => {
        expect(decodeAttributedBody(encodeAttributedBody(text, { mutable }))).toBe(text);
      }),
      { numRuns: 1000 },
    );
  });

  it("never returns part of a text: any cut before its end gives undefined", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "binary", minLength: 1, maxLength: 200 }),
        fc.nat(),
        (text, cut) => {
          const blob = encodeAttributedBody(text);
          const utf8 = Buffer.from(text);
          const end =
            blob.indexOf(utf8, blob.indexOf(Buffer.from([0x84, 0x01, 0x2b]))) + utf8.length;
          expect(decodeAttributedBody(blob.subarray(0, cut % end))).toBeUndefined();
        },
      ),
      { numRuns: 500 },
    );
  });
});
