/**
 * signal-cli's JSON-RPC over HTTP (`POST /api/v1/rpc`, `signal-cli-jsonrpc(5)`): one request per
 * call, its `result` or a `DispatchError` saying what to do. Also `GET /api/v1/check`, which
 * answers 200 while the daemon runs.
 */
import { randomUUID } from "node:crypto";
import { DispatchError, describeError } from "../../utils/errors.js";

/** JSON-RPC's "method not found": signal-cli's answer to `listAccounts` with `-a ACCOUNT`. */
export const METHOD_NOT_FOUND = -32601;

/** A JSON-RPC error signal-cli answered with; `rpcCode` is its `error.code`. */
export class SignalRpcError extends DispatchError {
  constructor(
    readonly method: string,
    readonly rpcCode: number,
    message: string,
  ) {
    super(
      "signal_rpc_failed",
      `[signal] signal-cli refused \`${method}\`: ${message} (JSON-RPC error ${rpcCode}).` +
        hintFor(method, rpcCode, message),
    );
  }
}

export interface SignalRpc {
  /** Calls `method` with `params`; resolves with its `result`. */
  call(method: string, params?: Record<string, unknown>): Promise<unknown>;
  /** Resolves when `GET /api/v1/check` answers 200. */
  check(): Promise<void>;
}

export interface SignalRpcOptions {
  /** signal-cli's daemon, `http://127.0.0.1:8080`: the `--http` address. */
  url: string;
  /** How long one call may take (a send to a large group takes seconds). */
  timeoutMs?: number;
}

export function createSignalRpc(options: SignalRpcOptions): SignalRpc {
  const base = options.url.replace(/\/+$/, "");
  const timeoutMs = options.timeoutMs ?? 60_000;

  const request = async (route: string, init: RequestInit): Promise<Response> => {
    try {
      return await fetch(`${base}${route}`, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    } catch (error) {
      throw unreachable(options.url, error);
    }
  };

  return {
    async call(method, params) {
      const response = await request("/api/v1/rpc", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: randomUUID(), method, params: params ?? {} }),
      });
      const body = await response.text().catch(() => "");
      if (!response.ok) {
        throw new DispatchError(
          "signal_rpc_failed",
          `[signal] signal-cli answered \`${method}\` with HTTP ${response.status}. Check that ` +
            `channels.signal.url (${options.url}) is signal-cli's \`daemon --http\` address.`,
        );
      }
      let reply: unknown;
      try {
        reply = JSON.parse(body);
      } catch (error) {
        throw new DispatchError(
          "signal_rpc_failed",
          `[signal] signal-cli's answer to \`${method}\` is not JSON (${describeError(error)}).`,
          { cause: error },
        );
      }
      const { result, error } = (reply ?? {}) as { result?: unknown; error?: unknown };
      if (error !== undefined && error !== null) {
        const { code, message } = error as { code?: unknown; message?: unknown };
        throw new SignalRpcError(
          method,
          typeof code === "number" ? code : 0,
          typeof message === "string" ? message : "no message given",
        );
      }
      return result;
    },

    async check() {
      const response = await request("/api/v1/check", { method: "GET" });
      await response.text().catch(() => "");
      if (!response.ok) {
        throw new DispatchError(
          "signal_unreachable",
          `[signal] ${options.url}/api/v1/check answered HTTP ${response.status}, not 200: is ` +
            "channels.signal.url signal-cli's `daemon --http` address?",
        );
      }
    },
  };
}

/** The error for a daemon that cannot be reached at all. */
export function unreachable(url: string, cause: unknown): DispatchError {
  return new DispatchError(
    "signal_unreachable",
    `[signal] signal-cli's daemon at ${url} cannot be reached (${describeError(cause)}). Start ` +
      "it with `signal-cli -a ACCOUNT daemon --http 127.0.0.1:8080 --receive-mode=on-connection`, " +
      "or set channels.signal.url to the address it listens on.",
    { cause },
  );
}

function hintFor(method: string, rpcCode: number, message: string): string {
  if (/not registered/i.test(message)) {
    return " The recipient has no Signal account; nothing can be sent to them there.";
  }
  if (/account/i.test(message) && rpcCode === -32602) {
    return (
      " signal-cli does not hold channels.signal.account: register or link it (`signal-cli -a " +
      "ACCOUNT register`, or `link`), or start the daemon with that account."
    );
  }
  if (rpcCode === -5) return " Signal is rate limiting this account; dispatch retries later.";
  if (rpcCode === -4) {
    return " A recipient's safety number changed: trust it with `signal-cli -a ACCOUNT trust`.";
  }
  if (method === "send") return " See signal-cli's own log for more.";
  return "";
}
