import { randomBytes } from "node:crypto";
import { chmod, link, mkdir, open, readFile, stat, unlink } from "node:fs/promises";
import { dirname } from "node:path";
import { DispatchError, describeError } from "../../utils/errors.js";
import type { Logger } from "../../logging/logger.js";

export const TOKEN_BYTES = 32;
/** Shorter tokens are refused: a guessable token guards nothing. */
export const MIN_TOKEN_LENGTH = 16;
const MAKE_TOKEN =
  "Make a good one with `openssl rand -hex 32` (or " +
  "`node -e \"console.log(require('crypto').randomBytes(32).toString('base64url'))\"`)";
const FILE_MODE = 0o600;
const FOLDER_MODE = 0o700;

export interface ApiToken {
  token: string;
  /** `environment`: DISPATCH_API_TOKEN; `file`: read from the file; `created`: just written. */
  source: "environment" | "file" | "created";
}

/**
 * The bearer token the HTTP API wants. `envToken` (DISPATCH_API_TOKEN) wins when set and not
 * blank; otherwise the token file is read, or created with 32 random bytes (base64url), mode 0600,
 * in a folder made 0700. A token file others can read is made 0600 again, with a warning. A token
 * shorter than 16 characters, or with whitespace inside, is refused (`api_token_weak`).
 */
export async function loadOrCreateApiToken(
  path: string,
  envToken?: string,
  options: { logger?: Logger } = {},
): Promise<ApiToken> {
  const fromEnvironment = envToken?.trim();
  if (fromEnvironment) {
    const problem = weakTokenProblem(fromEnvironment, "DISPATCH_API_TOKEN");
    if (problem !== undefined) throw new DispatchError("api_token_weak", problem);
    return { token: fromEnvironment, source: "environment" };
  }

  const existing = await readTokenFile(path, options.logger);
  if (existing !== undefined) return { token: checkedFileToken(existing, path), source: "file" };

  const token = randomBytes(TOKEN_BYTES).toString("base64url");
  const created = await createTokenFile(path, token);
  if (!created) {
    // Another process created it between our read and our write: use theirs.
    const theirs = await readTokenFile(path, options.logger);
    if (theirs !== undefined) return { token: checkedFileToken(theirs, path), source: "file" };
    throw new DispatchError(
      "api_token_unreadable",
      `The API token file ${path} appeared while dispatch was creating it, but it is empty. ` +
        "Delete it and start dispatch again.",
    );
  }
  options.logger?.info("api-token-create", { path });
  return { token, source: "created" };
}

/**
 * Why `token` is too weak to guard the API, naming where it came from (`DISPATCH_API_TOKEN`,
 * or the token file) and how to make a good one; undefined when it will do.
 */
export function weakTokenProblem(token: string, source: string): string | undefined {
  const fromEnvironment = source === "DISPATCH_API_TOKEN";
  const where = fromEnvironment ? source : `The API token in ${source}`;
  const fix = fromEnvironment
    ? `${MAKE_TOKEN}, or unset DISPATCH_API_TOKEN and dispatch uses the token it generates in ` +
      "state/api-token."
    : `${MAKE_TOKEN} and write it there, or delete the file and dispatch generates a new one at ` +
      "its next start.";
  if (token.length < MIN_TOKEN_LENGTH) {
    const length = `${token.length} character${token.length === 1 ? "" : "s"}`;
    return `${where} is ${length} long; the HTTP API needs at least ${MIN_TOKEN_LENGTH}, or anyone who can reach it could guess it. ${fix}`;
  }
  if (/\s/.test(token)) {
    return `${where} contains whitespace, which an \`Authorization: Bearer\` header cannot carry. ${fix}`;
  }
  return undefined;
}

function checkedFileToken(token: string, path: string): string {
  const problem = weakTokenProblem(token, path);
  if (problem !== undefined) throw new DispatchError("api_token_weak", problem);
  return token;
}

/** The token in the file, or undefined when there is no file (or only an empty one). */
async function readTokenFile(
  path: string,
  logger: Logger | undefined,
): Promise<string | undefined> {
  let mode: number;
  try {
    const info = await stat(path);
    if (!info.isFile()) {
      throw new DispatchError(
        "api_token_unreadable",
        `The API token path ${path} is not a file. Remove it, or set DISPATCH_API_TOKEN.`,
      );
    }
    mode = info.mode;
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw asTokenError(path, error);
  }

  if ((mode & 0o077) !== 0) {
    logger?.warn("api-token-permissions-fix", {
      path,
      mode: (mode & 0o777).toString(8),
      expected: FILE_MODE.toString(8),
    });
    try {
      await chmod(path, FILE_MODE);
    } catch (error) {
      throw asTokenError(path, error);
    }
  }

  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw asTokenError(path, error);
  }
  const token = text.trim();
  if (token.length === 0) {
    logger?.warn("api-token-empty", { path });
    await unlink(path).catch((error: unknown) => {
      if (errorCode(error) !== "ENOENT") throw asTokenError(path, error);
    });
    return undefined;
  }
  return token;
}

/**
 * Writes the token to a temp file and hard-links it into place, so the file appears whole or
 * not at all and never replaces one another process made. False when the file already exists.
 */
async function createTokenFile(path: string, token: string): Promise<boolean> {
  const temp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await mkdir(dirname(path), { recursive: true, mode: FOLDER_MODE });
    const handle = await open(temp, "wx", FILE_MODE);
    try {
      await handle.writeFile(`${token}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temp, path);
    return true;
  } catch (error) {
    if (errorCode(error) === "EEXIST") return false;
    throw asTokenError(path, error);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

function asTokenError(path: string, error: unknown): DispatchError {
  if (error instanceof DispatchError) return error;
  return new DispatchError(
    "api_token_unreadable",
    `The API token file ${path} cannot be read or written: ${describeError(error)}. ` +
      "Check the permissions of the file and its folder, or set DISPATCH_API_TOKEN.",
    { cause: error },
  );
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}
