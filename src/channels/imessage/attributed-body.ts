/**
 * Reads the words out of `message.attributedBody`: an NSAttributedString archived by NSArchiver
 * as a "typedstream". Current macOS often leaves `message.text` NULL and keeps the words only
 * here.
 *
 * The layout Messages writes (only the first string matters):
 * ```
 * 04 0B "streamtyped" 81 E8 03 84 01 40 84 84 84 12 "NSAttributedString" 00 84 84 08 "NSObject"
 * 00 85 92 84 84 84 08 "NSString" 01 94 84 01 2B <length> <UTF-8 bytes> 86 ...
 * ```
 * `84 01 2B` introduces a one-character type string `+` (bytes with a length). The length is a
 * typedstream integer: one byte below 0x80, `81` and 2 bytes little-endian, or `82` and 4 bytes.
 * A mutable string (`NSMutableString`, which then names `NSString` as its superclass) has the
 * same `+` marker after the `NSString` name.
 */

const HEADER = Buffer.from([0x04, 0x0b, ...Buffer.from("streamtyped", "latin1")]);
const STRING_CLASS = Buffer.from("NSString", "latin1");
/** `84 01 2B`: a new type string of length 1 that is `+`. */
const PLUS_MARKER = Buffer.from([0x84, 0x01, 0x2b]);
/** How far after the `NSString` name the marker may sit (a version byte and a class reference). */
const MARKER_WINDOW = 16;

const TWO_BYTE_LENGTH = 0x81;
const FOUR_BYTE_LENGTH = 0x82;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The text of an attributedBody blob; `undefined` when the blob is not a typedstream holding a
 * string this decoder understands. Never throws.
 */
export function decodeAttributedBody(blob: Uint8Array): string | undefined {
  try {
    return decode(Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength));
  } catch {
    return undefined;
  }
}

function decode(bytes: Buffer): string | undefined {
  if (bytes.length < HEADER.length || !bytes.subarray(0, HEADER.length).equals(HEADER)) {
    return undefined;
  }
  const classAt = bytes.indexOf(STRING_CLASS, HEADER.length);
  if (classAt < 0) return undefined;
  const searchFrom = classAt + STRING_CLASS.length;
  const window = bytes.subarray(searchFrom, searchFrom + MARKER_WINDOW + PLUS_MARKER.length);
  const markerAt = window.indexOf(PLUS_MARKER);
  if (markerAt < 0) return undefined;
  const length = readLength(bytes, searchFrom + markerAt + PLUS_MARKER.length);
  if (!length) return undefined;
  const end = length.textAt + length.value;
  if (end > bytes.length) return undefined;
  return utf8.decode(bytes.subarray(length.textAt, end));
}

/** A typedstream integer used as a byte count; `undefined` when cut short or negative. */
function readLength(bytes: Buffer, at: number): { value: number; textAt: number } | undefined {
  const first = bytes[at];
  if (first === undefined) return undefined;
  if (first === TWO_BYTE_LENGTH) {
    if (at + 3 > bytes.length) return undefined;
    // Apple writes 128..32767 here (a signed short); read it unsigned so other writers work too.
    return { value: bytes.readUInt16LE(at + 1), textAt: at + 3 };
  }
  if (first === FOUR_BYTE_LENGTH) {
    if (at + 5 > bytes.length) return undefined;
    const value = bytes.readInt32LE(at + 1);
    return value < 0 ? undefined : { value, textAt: at + 5 };
  }
  // Other bytes from 0x80 up are typedstream tags, not lengths.
  if (first >= 0x80) return undefined;
  return { value: first, textAt: at + 1 };
}
