/**
 * Checks an `Authorization: Bearer <token>` header in constant time: both sides are hashed
 * first, so neither the token's length nor its content shows in how long the check takes. The
 * HTTP API and the dashboard's JSON routes both use it, with the same help text.
 */
import { createHash, timingSafeEqual } from "node:crypto";

export const TOKEN_HELP =
  "The token is in the file state/api-token under dispatch's home (~/dispatch by default), " +
  "or in DISPATCH_API_TOKEN when that is set.";

export type BearerCheck = (header: string | undefined) => string | undefined;

/** Returns a check that gives undefined for the right token, and otherwise what is wrong. */
export function createBearerCheck(token: string): BearerCheck {
  const expected = sha256(token);
  return (header) => {
    if (header === undefined || header.trim() === "") {
      return `Missing bearer token: send the header \`Authorization: Bearer <token>\`. ${TOKEN_HELP}`;
    }
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (match?.[1] === undefined) {
      return `The Authorization header must be \`Bearer <token>\`. ${TOKEN_HELP}`;
    }
    if (!timingSafeEqual(sha256(match[1]), expected)) {
      return `The bearer token is wrong. ${TOKEN_HELP}`;
    }
    return undefined;
  };
}

function sha256(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
