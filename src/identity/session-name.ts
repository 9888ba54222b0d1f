/**
 * Session names: the folder name of a chat's session (`~/transcripts/<session-name>`), derived
 * once from the contact's name and never changed, because resuming an SDK session needs the same
 * working directory.
 */
import { asSessionName, type SessionName } from "../utils/ids.js";

/** Longest name derived from a contact name, before any `-2` style suffix. */
export const MAX_SESSION_NAME_BASE_LENGTH = 48;
/** Longest name `isSafeSessionName` accepts: the base plus a generous uniqueness suffix. */
export const MAX_SESSION_NAME_LENGTH = 60;
/** What a contact name with nothing usable in it (emoji only, "中文", "../..") becomes. */
export const FALLBACK_SESSION_NAME = "chat";

// Lower-case ASCII words joined by single dashes: no dots, separators or spaces, so the name is
// one path segment on every file system and needs no quoting in a shell.
const SESSION_NAME_GRAMMAR = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

// Device names Windows refuses as file names; harmless on macOS, but a transcripts folder may
// be synced or copied to a machine where they are not.
const RESERVED_NAMES: ReadonlySet<string> = new Set([
  "con",
  "prn",
  "aux",
  "nul",
  ...Array.from({ length: 9 }, (_, index) => `com${index + 1}`),
  ...Array.from({ length: 9 }, (_, index) => `lpt${index + 1}`),
]);

// Letters NFKD leaves whole because they are not a base letter plus an accent.
const LETTER_TRANSLITERATIONS: Readonly<Record<string, string>> = {
  ß: "ss",
  æ: "ae",
  œ: "oe",
  ø: "o",
  ł: "l",
  đ: "d",
  ð: "d",
  þ: "th",
  ı: "i",
};

/**
 * Derives a new, folder-safe session name from a contact name, one `isTaken` does not know:
 * "John Doe" -> "john-doe", then "john-doe-2". Candidates are lower-case; `isTaken` must compare
 * case-insensitively (macOS file systems do), and cheaply: it is asked once per candidate, so a
 * new chat costs the same with 10 or 10,000 names taken.
 */
export function createSessionName(
  contactName: string,
  isTaken: (lowerCaseName: string) => boolean,
): SessionName {
  const base = toBaseName(contactName);
  const isFree = (name: string): boolean => !isTaken(name) && !RESERVED_NAMES.has(name);
  if (isFree(base)) return asSessionName(base);
  // Terminates: each taken name blocks at most one suffix.
  for (let suffix = 2; ; suffix += 1) {
    const candidate = `${base}-${suffix}`;
    if (isFree(candidate)) return asSessionName(candidate);
  }
}

/**
 * Checks a stored session name (the registry file can be edited by hand) before it becomes part
 * of a path: the same grammar `createSessionName` produces, and nothing reserved.
 */
export function isSafeSessionName(name: string): boolean {
  return (
    typeof name === "string" &&
    name.length <= MAX_SESSION_NAME_LENGTH &&
    SESSION_NAME_GRAMMAR.test(name) &&
    !RESERVED_NAMES.has(name)
  );
}

function toBaseName(contactName: string): string {
  const folded = contactName
    .normalize("NFKD")
    .replace(/\p{M}/gu, "")
    .toLowerCase()
    .replace(/[^a-z0-9]/g, (letter) => LETTER_TRANSLITERATIONS[letter] ?? letter);
  const dashed = folded
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, MAX_SESSION_NAME_BASE_LENGTH)
    .replace(/-+$/, "");
  return dashed === "" ? FALLBACK_SESSION_NAME : dashed;
}
