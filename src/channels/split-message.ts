/**
 * Splits a reply into parts no longer than `limit` characters, preferring paragraph breaks,
 * then line breaks, then sentence ends, then spaces; a run with none of these is cut hard.
 * Parts are trimmed; joining them with the separators they were cut at gives the text back.
 */
export function splitMessage(text: string, limit: number): string[] {
  if (limit < 1) throw new RangeError(`splitMessage: limit must be at least 1, got ${limit}`);
  const parts: string[] = [];
  let rest = text.trim();
  while (rest.length > limit) {
    const cut = findCut(rest, limit);
    const part = rest.slice(0, cut).trimEnd();
    if (part) parts.push(part);
    rest = rest.slice(cut).trimStart();
  }
  if (rest) parts.push(rest);
  return parts;
}

const BREAKS: readonly RegExp[] = [/\n\s*\n/g, /\n/g, /[.!?…。！？]["')\]]*\s/g, /\s/g];

/** The index to cut `text` at: the end of the last break of the best kind within `limit`. */
function findCut(text: string, limit: number): number {
  const window = text.slice(0, limit + 1);
  // A cut in the first third would leave a tiny part; fall through to a finer kind of break.
  const minimum = Math.floor(limit / 3);
  for (const pattern of BREAKS) {
    let best = -1;
    for (const match of window.matchAll(pattern)) {
      const end = match.index + match[0].length;
      if (end <= limit && end > minimum) best = end;
    }
    if (best > 0) return best;
  }
  return surrogateSafe(text, limit);
}

/** Never cut between the two halves of a surrogate pair (an emoji, say). */
function surrogateSafe(text: string, index: number): number {
  const code = text.charCodeAt(index - 1);
  return code >= 0xd800 && code <= 0xdbff && index > 1 ? index - 1 : index;
}
