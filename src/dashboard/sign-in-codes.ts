/**
 * One-time sign-in codes for the dashboard (`dispatch dashboard`): the CLI, which can read the
 * API token, asks for a code; the browser trades the code for the token once. Codes are random
 * (256 bits), short-lived, kept in memory only (a restart forgets them), bounded in number (the
 * oldest goes first), and compared in constant time (every live code is compared, by its hash).
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Clock } from "../utils/clock.js";

/** How long a code may be redeemed. */
export const SIGN_IN_CODE_TTL_MS = 60_000;
/** Codes kept at most; issuing one more forgets the oldest. */
export const MAX_SIGN_IN_CODES = 16;

export interface IssuedCode {
  code: string;
  /** Epoch milliseconds after which the code is refused. */
  expiresAt: number;
}

/** `redeemed`: the code was live and is now spent; `expired`: it was issued but ran out; `unknown`: never issued, already spent, or forgotten. */
export type RedeemOutcome = "redeemed" | "expired" | "unknown";

export interface SignInCodes {
  issue(): IssuedCode;
  redeem(code: string): RedeemOutcome;
}

export interface SignInCodesOptions {
  clock: Pick<Clock, "now">;
  ttlMs?: number;
  maxCodes?: number;
  /** Random bytes; `crypto.randomBytes` by default. */
  random?: (size: number) => Buffer;
}

interface Entry {
  hash: Buffer;
  expiresAt: number;
}

export function createSignInCodes(options: SignInCodesOptions): SignInCodes {
  const ttlMs = options.ttlMs ?? SIGN_IN_CODE_TTL_MS;
  const maxCodes = options.maxCodes ?? MAX_SIGN_IN_CODES;
  const random = options.random ?? randomBytes;
  // Oldest first. Expired entries stay (until pushed out) so that a late click is told "expired".
  const entries: Entry[] = [];

  return {
    issue() {
      const code = random(32).toString("base64url");
      const expiresAt = options.clock.now() + ttlMs;
      entries.push({ hash: sha256(code), expiresAt });
      while (entries.length > maxCodes) entries.shift();
      return { code, expiresAt };
    },
    redeem(code) {
      const hash = sha256(code);
      let found: number | undefined;
      // No early exit: the time taken does not depend on which entry, if any, matches.
      entries.forEach((entry, index) => {
        if (timingSafeEqual(entry.hash, hash)) found = index;
      });
      if (found === undefined) return "unknown";
      const [entry] = entries.splice(found, 1);
      return entry!.expiresAt > options.clock.now() ? "redeemed" : "expired";
    },
  };
}

function sha256(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
