/**
 * The registry file kept ready to write. At ten thousand chats `sessions.json` is about 3.5 MB,
 * and formatting every entry for every write cost ~100 ms of CPU (JSON.stringify of unchanged
 * entries, then joining and encoding one big string). Here each chat's part of the file is
 * formatted once per change of its entry and kept; a write copies the kept parts, in chat-id
 * order, into one buffer reused from write to write. The bytes are exactly `serialiseRegistry`'s.
 */
import type { ChatId } from "../utils/ids.js";
import type { RegistryEntry } from "./registry.js";
import { compareChatIds, EMPTY_FILE, entryLine } from "./registry-file-format.js";

/** Where the image reads the entries from: the registry's in-memory map. */
export interface RegistryEntrySource {
  get(chatId: ChatId): RegistryEntry | undefined;
  keys(): Iterable<ChatId>;
}

/** UTF-8 takes at most three bytes per UTF-16 code unit. */
const MAX_BYTES_PER_CODE_UNIT = 3;

export class RegistryFileImage {
  /** Each chat's formatted part of the file, made on first need after a change. */
  private readonly lines = new Map<ChatId, string>();
  /** Chat ids in file order; built at the first render, then kept in order by `changed`. */
  private order: ChatId[] | undefined;
  private buffer = Buffer.alloc(0);

  constructor(private readonly source: RegistryEntrySource) {}

  /** The chat's entry was added, changed or removed in the source. */
  changed(chatId: ChatId): void {
    this.lines.delete(chatId);
    if (this.order === undefined) return;
    const present = this.source.get(chatId) !== undefined;
    const index = lowerBound(this.order, chatId);
    const listed = this.order[index] === chatId;
    if (present && !listed) this.order.splice(index, 0, chatId);
    else if (!present && listed) this.order.splice(index, 1);
  }

  /**
   * The whole file as bytes. The buffer is reused: it is valid until the next `render`, so the
   * caller writes it before rendering again (the registry runs one write at a time).
   */
  render(): Buffer {
    this.order ??= [...this.source.keys()].sort(compareChatIds);
    if (this.order.length === 0) return Buffer.from(EMPTY_FILE);
    let offset = this.append("{\n", 0);
    for (let index = 0; index < this.order.length; index += 1) {
      if (index > 0) offset = this.append(",\n", offset);
      offset = this.append(this.lineOf(this.order[index]!), offset);
    }
    offset = this.append("\n}\n", offset);
    return this.buffer.subarray(0, offset);
  }

  /** Bytes the reused buffer holds (its capacity), for tests and measurements. */
  get capacity(): number {
    return this.buffer.length;
  }

  private lineOf(chatId: ChatId): string {
    let line = this.lines.get(chatId);
    if (line === undefined) {
      const entry = this.source.get(chatId);
      if (entry === undefined) throw new Error(`registry file image: no entry for ${chatId}`);
      line = entryLine(chatId, entry);
      this.lines.set(chatId, line);
    }
    return line;
  }

  private append(text: string, offset: number): number {
    const needed = offset + text.length * MAX_BYTES_PER_CODE_UNIT;
    if (needed > this.buffer.length) {
      // Grows by half again: a registry growing one chat at a time reallocates rarely. Unwritten
      // pages of an allocUnsafe buffer are never touched, so the slack costs no resident memory.
      const grown = Buffer.allocUnsafe(Math.max(needed, Math.ceil(this.buffer.length * 1.5), 4096));
      this.buffer.copy(grown, 0, 0, offset);
      this.buffer = grown;
    }
    return offset + this.buffer.write(text, offset, "utf8");
  }
}

/** The first index whose id is not before `chatId` (where it is, or would be inserted). */
function lowerBound(sorted: readonly ChatId[], chatId: ChatId): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareChatIds(sorted[middle]!, chatId) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}
