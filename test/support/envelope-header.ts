import type { RecordedRequest } from "../../src/stand-in/model-server.js";

const ENVELOPE =
  /<msg nonce="[a-z2-7]{16}"((?: [a-z_]+=(?:"(?:[^"\\\n]|\\.)*"|null))*)>\n[\s\S]*?\n<\/msg nonce="[a-z2-7]{16}">/g;
const ATTRIBUTE = / ([a-z_]+)=("(?:[^"\\\n]|\\.)*"|null)/g;

/**
 * The header of the first envelope the model was given that holds `word`, as its attributes:
 * what the agent was told with that message, read from the requests the stand-in recorded.
 */
export function envelopeHeaderFor(
  requests: readonly RecordedRequest[],
  word: string,
): Record<string, string | null> {
  for (const request of requests) {
    for (const text of request.userTexts) {
      for (const envelope of text.matchAll(ENVELOPE)) {
        if (!envelope[0].includes(word)) continue;
        const header: Record<string, string | null> = {};
        for (const [, name, value] of envelope[1]!.matchAll(ATTRIBUTE)) {
          header[name!] = JSON.parse(value!) as string | null;
        }
        return header;
      }
    }
  }
  throw new Error(`the model was never given an envelope holding "${word}"`);
}
