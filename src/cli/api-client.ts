/**
 * A small client for the daemon's HTTP API on 127.0.0.1. It turns the API's error bodies
 * (`{ error: { code, message } }`) into `DispatchError`s with the same code and message, and a
 * refused connection into `daemon_not_running`, so every command reports failures the same way.
 *
 * It speaks `node:http` rather than `fetch`: fetch gives up waiting for response headers after
 * 300 s, and a `wait: true` message may legitimately take up to `turnTimeoutSeconds` (600 s).
 */
import http from "node:http";
import { readFile } from "node:fs/promises";
import type {
  HealthView,
  NodeView,
  SessionView,
  StopResult,
  SubmitResult,
} from "../channels/http/control-plane.js";
import { DispatchError, describeError } from "../utils/errors.js";
import { loadConfig, resolvePaths, type LoadedConfig } from "../config/load-config.js";
import { resolveDaemonPort } from "./daemon-port.js";

export const API_HOST = "127.0.0.1";

export interface ApiClientOptions {
  port: number;
  /** The bearer token; throws `api_token_missing` when there is none. */
  readToken: () => Promise<string>;
}

export interface SendMessageInput {
  chatId: string;
  text: string;
  sender?: string;
  groupName?: string;
  messageId?: string;
}

export interface ApiClient {
  readonly port: number;
  health(): Promise<HealthView>;
  listSessions(): Promise<SessionView[]>;
  listNodes(): Promise<NodeView[]>;
  getSession(chatId: string): Promise<SessionView>;
  restartSession(chatId: string): Promise<SessionView>;
  /** Stops the session; with `forget` also drops it and archives its files (see `archive`). */
  stopSession(chatId: string, options: { forget: boolean }): Promise<StopResult>;
  /** Hands the message over and returns once it is accepted (`202`). */
  sendMessage(input: SendMessageInput): Promise<{ message_id: string }>;
  /**
   * Hands the message over and returns once the turn that answers it has ended. `signal` stops
   * the wait (the daemon still answers the message; the reply stays in its journal).
   */
  sendMessageAndWait(input: SendMessageInput, signal?: AbortSignal): Promise<SubmitResult>;
  /** A one-time code that signs a browser in to the dashboard (`dispatch dashboard`). */
  createSignInCode(): Promise<SignInCode>;
}

export interface SignInCode {
  code: string;
  expires_at: string;
  expires_in_seconds: number;
}

interface RawResponse {
  status: number;
  statusText: string;
  body: string;
}

export function createApiClient(options: ApiClientOptions): ApiClient {
  const { port } = options;

  async function request(
    method: string,
    path: string,
    requestOptions: { body?: unknown; authenticated?: boolean; signal?: AbortSignal } = {},
  ): Promise<unknown> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (requestOptions.authenticated !== false) {
      headers["authorization"] = `Bearer ${await tokenOrNotRunning()}`;
    }
    let body: string | undefined;
    if (requestOptions.body !== undefined) {
      body = JSON.stringify(requestOptions.body);
      headers["content-type"] = "application/json";
    }
    const response = await send(port, method, path, headers, body, requestOptions.signal);
    return readBody(response, method, path);
  }

  /** With no token file, a stopped daemon is the likelier story: say that instead. */
  async function tokenOrNotRunning(): Promise<string> {
    try {
      return await options.readToken();
    } catch (error) {
      if (error instanceof DispatchError && error.code === "api_token_missing") {
        await send(port, "GET", "/healthz", { accept: "application/json" }, undefined);
      }
      throw error;
    }
  }

  const sessionPath = (chatId: string): string => `/v1/sessions/${encodeURIComponent(chatId)}`;
  const messageBody = (input: SendMessageInput, wait: boolean): Record<string, unknown> => ({
    chat_id: input.chatId,
    text: input.text,
    ...(input.sender === undefined ? {} : { sender: input.sender }),
    ...(input.groupName === undefined ? {} : { group_name: input.groupName }),
    ...(input.messageId === undefined ? {} : { message_id: input.messageId }),
    wait,
  });

  return {
    port,
    health: async () => {
      // A daemon that is shutting down answers 503 with its health, not an error body.
      const response = await send(
        port,
        "GET",
        "/healthz",
        { accept: "application/json" },
        undefined,
      );
      if (response.status === 503) {
        const health = parseJson(response.body);
        if (isHealthView(health)) return health;
      }
      return readBody(response, "GET", "/healthz") as HealthView;
    },
    listSessions: async () => expectArray(await request("GET", "/v1/sessions")) as SessionView[],
    listNodes: async () => expectArray(await request("GET", "/v1/nodes")) as NodeView[],
    getSession: async (chatId) => (await request("GET", sessionPath(chatId))) as SessionView,
    restartSession: async (chatId) =>
      (await request("POST", `${sessionPath(chatId)}/restart`)) as SessionView,
    stopSession: async (chatId, { forget }) => {
      const body = await request("DELETE", `${sessionPath(chatId)}${forget ? "?forget=true" : ""}`);
      const archive = (body as { archive?: unknown } | undefined)?.archive;
      return { archive: typeof archive === "string" ? archive : null };
    },
    sendMessage: async (input) =>
      (await request("POST", "/v1/messages", { body: messageBody(input, false) })) as {
        message_id: string;
      },
    sendMessageAndWait: async (input, signal) =>
      (await request("POST", "/v1/messages", {
        body: messageBody(input, true),
        ...(signal ? { signal } : {}),
      })) as SubmitResult,
    createSignInCode: async () =>
      (await request("POST", "/v1/dashboard/sign-in-codes")) as SignInCode,
  };
}

/** What every command says when nothing listens on the port. */
export function notRunningError(port: number, cause?: unknown): DispatchError {
  return new DispatchError(
    "daemon_not_running",
    `dispatch is not running on ${API_HOST}:${port}. Start it with \`npm start\` (or \`dispatch start\`)`,
    { cause },
  );
}

export interface ClientEnvironment {
  env: NodeJS.ProcessEnv;
  homeDir: string;
  platform: NodeJS.Platform;
  /** Where a warning goes (stderr); none when absent. */
  stderr?: (text: string) => void;
}

/**
 * The client for this environment: the port from `DISPATCH_PORT`, else from config.json (7878 by
 * default; see `daemon-port.ts` for an invalid file); the token from `DISPATCH_API_TOKEN`, else
 * the api-token file under the dispatch home.
 */
export async function createApiClientFor(
  environment: ClientEnvironment,
  readConfig: () => Promise<LoadedConfig> = () =>
    loadConfig({
      env: environment.env,
      homeDir: environment.homeDir,
      platform: environment.platform,
    }),
): Promise<ApiClient> {
  const paths = resolvePaths(environment.env, environment.homeDir);
  const port = await resolveDaemonPort({
    env: environment.env,
    paths,
    readConfig,
    warn: (line) => environment.stderr?.(`${line}\n`),
  });
  return createApiClient({
    port,
    readToken: () => readApiToken(environment.env, paths.apiTokenFile),
  });
}

/** `DISPATCH_API_TOKEN`, else the first line of the token file. */
export async function readApiToken(env: NodeJS.ProcessEnv, tokenFile: string): Promise<string> {
  const fromEnvironment = env["DISPATCH_API_TOKEN"]?.trim();
  if (fromEnvironment) return fromEnvironment;
  let text: string;
  try {
    text = await readFile(tokenFile, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new DispatchError(
        "api_token_missing",
        `There is no API token at ${tokenFile}. dispatch writes it when it starts; if it runs ` +
          "with another DISPATCH_HOME, set DISPATCH_HOME to the same folder, or set " +
          "DISPATCH_API_TOKEN.",
        { cause: error },
      );
    }
    throw new DispatchError(
      "api_token_unreadable",
      `Cannot read the API token at ${tokenFile}: ${describeError(error)}. Run dispatch as ` +
        "the user that started the daemon, or set DISPATCH_API_TOKEN.",
      { cause: error },
    );
  }
  const token = text.trim();
  if (token === "") {
    throw new DispatchError(
      "api_token_missing",
      `The API token file ${tokenFile} is empty. Delete it and restart dispatch to write a new ` +
        "one, or set DISPATCH_API_TOKEN.",
    );
  }
  return token;
}

function send(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: string | undefined,
  signal?: AbortSignal,
): Promise<RawResponse> {
  return new Promise<RawResponse>((resolve, reject) => {
    // No agent: a kept-alive socket would hold a one-shot command open after its answer.
    const request = http.request(
      { host: API_HOST, port, method, path, headers, agent: false, ...(signal ? { signal } : {}) },
      (response) => {
        response.setEncoding("utf8");
        let text = "";
        response.on("data", (chunk: string) => {
          text += chunk;
        });
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 0,
            statusText: response.statusMessage ?? "",
            body: text,
          }),
        );
        response.on("error", (error) => reject(transportError(error, port)));
      },
    );
    request.on("error", (error) => reject(transportError(error, port)));
    request.end(body);
  });
}

function transportError(error: Error, port: number): DispatchError {
  if ((error as NodeJS.ErrnoException).code === "ECONNREFUSED") return notRunningError(port, error);
  return new DispatchError(
    "daemon_unreachable",
    `The connection to dispatch on ${API_HOST}:${port} failed: ${error.message}. ` +
      "If the daemon stopped or restarted, check `dispatch status` and try again.",
    { cause: error },
  );
}

function readBody(response: RawResponse, method: string, path: string): unknown {
  const ok = response.status >= 200 && response.status < 300;
  let parsed: unknown;
  if (response.body.trim() !== "") {
    try {
      parsed = JSON.parse(response.body);
    } catch (error) {
      if (ok) {
        throw new DispatchError(
          "bad_response",
          `dispatch answered ${method} ${path} with something that is not JSON. Is another ` +
            "program listening on this port? Set DISPATCH_PORT to dispatch's port.",
          { cause: error },
        );
      }
    }
  }
  if (ok) return parsed;
  const apiError = errorFromBody(parsed);
  if (apiError) throw apiError;
  throw new DispatchError(
    `http_${response.status}`,
    `dispatch answered ${method} ${path} with ${response.status} ${response.statusText}`.trim() +
      ". Check the daemon's log for the reason.",
  );
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isHealthView(value: unknown): value is HealthView {
  return (
    typeof value === "object" && value !== null && "status" in value && "uptime_seconds" in value
  );
}

function errorFromBody(body: unknown): DispatchError | undefined {
  if (typeof body !== "object" || body === null || !("error" in body)) return undefined;
  const error: unknown = body.error;
  if (typeof error !== "object" || error === null) return undefined;
  const code = "code" in error && typeof error.code === "string" ? error.code : undefined;
  const message = "message" in error && typeof error.message === "string" ? error.message : "";
  if (code === undefined) return undefined;
  return new DispatchError(code, message || code);
}

function expectArray(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  throw new DispatchError(
    "bad_response",
    "dispatch answered GET /v1/sessions with something that is not a list. Are the CLI and " +
      "the daemon the same version?",
  );
}
