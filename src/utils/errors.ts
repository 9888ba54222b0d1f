/**
 * The one base error. `code` is stable snake_case for callers and the HTTP API; `message` says
 * what failed, why, and what to do next.
 */
export class DispatchError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DispatchError";
    this.code = code;
  }
}

export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
