/** `1 contact`, `2 contacts`, `0 groups`: a count with its noun, plural unless it is one. */
export function plural(count: number, noun: string, pluralNoun = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : pluralNoun}`;
}
