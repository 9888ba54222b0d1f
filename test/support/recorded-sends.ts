/**
 * The iMessage send command of the tests, and what it recorded. `recording-send.mjs` stands in
 * for osascript: given as `channels.imessage.sendCommand`, it appends each send to a record file
 * as one JSON line, `["buddy" | "chat", recipient, text]`.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

/** The stand-in's script, run by `process.execPath` with the record file first. */
export const RECORDING_SEND = fileURLToPath(new URL("./recording-send.mjs", import.meta.url));

/** The sends recorded in `recordFile`, in order; none when it does not exist yet. */
export async function readRecordedSends(recordFile: string): Promise<string[][]> {
  const text = await readFile(recordFile, "utf8").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return "";
    throw error;
  });
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as string[]);
}

/** The sends recorded in `recordFile` once there are `count` of them (30 s at most). */
export async function waitForRecordedSends(recordFile: string, count: number): Promise<string[][]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const lines = await readRecordedSends(recordFile);
    if (lines.length >= count) return lines;
    if (Date.now() > deadline) {
      throw new Error(`expected ${count} sends, got ${JSON.stringify(lines)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
