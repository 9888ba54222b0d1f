import type { Context } from "hono";
import type { Logger } from "../../logging/logger.js";
import { DispatchError } from "../../utils/errors.js";

/** Every error the API sends: `{ "error": { "code": "snake_case", "message": "..." } }`. */
export interface ErrorBody {
  error: { code: string; message: string };
}

export type ErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 413 | 421 | 429 | 500 | 502 | 503;

/** DispatchError codes (ours and the control plane's) and the status each one is sent with. */
const STATUS_BY_CODE: ReadonlyMap<string, ErrorStatus> = new Map<string, ErrorStatus>([
  ["bad_request", 400],
  ["invalid_json", 400],
  ["invalid_chat_id", 400],
  ["unauthorized", 401],
  // The dashboard's one-time sign-in link (`dispatch dashboard`): spent, unknown or too old.
  ["sign_in_code_invalid", 401],
  ["sign_in_code_expired", 401],
  ["unknown_sender", 403],
  ["not_found", 404],
  ["method_not_allowed", 405],
  // The dashboard's contacts view: a change the contacts file refuses, or made to an old copy.
  ["contacts_invalid", 400],
  ["contacts_changed", 409],
  // A cluster's session runs on another node: restart, stop or forget it there.
  ["session_elsewhere", 409],
  ["payload_too_large", 413],
  // The Host header names a host the server does not answer for (a DNS-rebound request).
  ["host_not_allowed", 421],
  ["rate_limited", 429],
  ["queue_full", 429],
  // More new chats from senders not in contacts.json than `newUnknownChatsPerMinute`.
  ["too_many_new_chats", 429],
  // More `GET /v1/events` streams open than the API serves at once.
  ["too_many_event_streams", 429],
  ["shutting_down", 503],
  ["quarantined", 503],
  ["no_credentials", 503],
  ["internal", 500],
  // The agent's turn ended in an error (an API failure the CLI gave up on).
  ["agent_error", 502],
]);

/** When a 429 carries no hint of its own, clients are told to wait this long. */
const DEFAULT_RETRY_AFTER_SECONDS = 1;

/**
 * A 429 that knows when to come back: the API's own rate limiter throws it, and so do the
 * inbox's intake limits. A plain `DispatchError` with a 429 code gets a one-second
 * `Retry-After`.
 */
export class RateLimitedError extends DispatchError {
  readonly retryAfterMs: number;

  constructor(
    message: string,
    retryAfterMs: number,
    options?: { code?: "rate_limited" | "queue_full" | "too_many_new_chats"; cause?: unknown },
  ) {
    super(options?.code ?? "rate_limited", message, { cause: options?.cause });
    this.name = "RateLimitedError";
    this.retryAfterMs = retryAfterMs;
  }
}

export function statusForCode(code: string): ErrorStatus {
  return STATUS_BY_CODE.get(code) ?? 500;
}

export function errorBody(code: string, message: string): ErrorBody {
  return { error: { code, message } };
}

export interface HttpError {
  status: ErrorStatus;
  body: ErrorBody;
  headers: Record<string, string>;
  /** True when the error was not one we expected: the caller logs it with its cause. */
  unexpected: boolean;
}

/**
 * Turns anything thrown while handling a request into the response to send. DispatchErrors keep
 * their code and message (their messages are written for the user); anything else becomes a
 * 500 `internal` whose message leaks nothing about the cause.
 */
export function toHttpError(error: unknown): HttpError {
  if (!(error instanceof DispatchError)) {
    return {
      status: 500,
      body: errorBody(
        "internal",
        "dispatch failed while handling this request; the daemon's log has the cause. Try again, and report it if it keeps happening.",
      ),
      headers: {},
      unexpected: true,
    };
  }
  const status = statusForCode(error.code);
  const headers: Record<string, string> = {};
  if (status === 429) headers["Retry-After"] = String(retryAfterSeconds(error));
  if (status === 401) headers["WWW-Authenticate"] = "Bearer";
  return {
    status,
    body: errorBody(error.code, error.message),
    headers,
    unexpected: status === 500,
  };
}

/**
 * The JSON error response for anything thrown while handling a request, with its headers
 * (`Retry-After`, `WWW-Authenticate`); an unexpected error is logged as `event` with its cause.
 * The HTTP API's and the dashboard's `onError` both answer with it.
 */
export function respondWithError(
  c: Context,
  error: unknown,
  logger: Logger,
  event: string,
): Response {
  const response = toHttpError(error);
  if (response.unexpected) {
    logger.error(event, {
      method: c.req.method,
      path: c.req.path,
      code: response.body.error.code,
      cause: error,
    });
  }
  for (const [name, value] of Object.entries(response.headers)) c.header(name, value);
  return c.json(response.body, response.status);
}

function retryAfterSeconds(error: DispatchError): number {
  if (!(error instanceof RateLimitedError)) return DEFAULT_RETRY_AFTER_SECONDS;
  return Math.max(1, Math.ceil(error.retryAfterMs / 1000));
}
