// @ts-check
/// <reference lib="dom" />
/* global sessionStorage, fetch, AbortController, TextDecoderStream, setTimeout */
/**
 * Talking to the daemon: the token (kept in sessionStorage, for this tab only, never in a URL),
 * JSON requests with the Authorization header, and the live event stream, read with fetch and a
 * streaming body reader because EventSource cannot send headers.
 */

const TOKEN_KEY = "dispatch.api-token";

/** @returns {string | null} */
export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** @param {string} token */
export function setToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

/**
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @param {string | null} [token]
 * @returns {Promise<any>}
 */
export async function request(method, path, body, token = getToken()) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      cache: "no-store",
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch {
    throw new ApiError(0, "offline", "dispatch does not answer: is the daemon running?");
  }
  const text = await response.text();
  /** @type {any} */
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const error = json && typeof json === "object" ? json.error : undefined;
    throw new ApiError(
      response.status,
      error?.code ?? "http_error",
      error?.message ?? `dispatch answered ${response.status}`,
    );
  }
  return json;
}

/**
 * @param {string} chatId
 * @returns {string}
 */
export function sessionPath(chatId) {
  return `/v1/dashboard/sessions/${encodeURIComponent(chatId)}`;
}

/**
 * Splits server-sent event text into complete events and the unfinished rest.
 * @param {string} buffer
 * @returns {{ events: { event: string, data: string, id: string | undefined }[], rest: string }}
 */
export function parseEvents(buffer) {
  const events = [];
  const normalised = buffer.replace(/\r\n?/g, "\n");
  const blocks = normalised.split("\n\n");
  const rest = blocks.pop() ?? "";
  for (const block of blocks) {
    let event = "message";
    /** @type {string | undefined} */
    let id;
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
    }
    if (data.length > 0) events.push({ event, data: data.join("\n"), id });
  }
  return { events, rest };
}

/**
 * @typedef {"connecting" | "live" | "reconnecting"} StreamState
 * @typedef {{
 *   onEvent: (event: string, data: string) => void,
 *   onState: (state: StreamState) => void,
 *   onUnauthorized: () => void,
 * }} StreamHandlers
 */

/**
 * Keeps a server-sent event stream open, reconnecting with a growing delay (up to 10 s) when it
 * breaks, and resuming after the last event id it got (`Last-Event-ID`). Any event but a
 * heartbeat marks it live.
 * @param {string} path
 * @param {StreamHandlers} handlers
 * @returns {{ close(): void }}
 */
export function openStream(path, handlers) {
  const controller = new AbortController();
  let delayMs = 500;
  /** @type {string | undefined} */
  let lastEventId;

  const connect = async () => {
    handlers.onState("connecting");
    const token = getToken();
    /** @type {Record<string, string>} */
    const headers = { Authorization: `Bearer ${token ?? ""}`, Accept: "text/event-stream" };
    if (lastEventId !== undefined) headers["Last-Event-ID"] = lastEventId;
    const response = await fetch(path, { headers, cache: "no-store", signal: controller.signal });
    if (response.status === 401) {
      handlers.onUnauthorized();
      controller.abort();
      return;
    }
    if (!response.ok || !response.body) throw new Error(`events answered ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      const parsed = parseEvents(buffer);
      buffer = parsed.rest;
      for (const { event, data, id } of parsed.events) {
        if (id !== undefined) lastEventId = id;
        if (event === "heartbeat") continue;
        delayMs = 500;
        handlers.onState("live");
        handlers.onEvent(event, data);
      }
    }
  };

  const loop = async () => {
    while (!controller.signal.aborted) {
      try {
        await connect();
      } catch {
        // Broken or refused: try again below.
      }
      if (controller.signal.aborted) return;
      handlers.onState("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      delayMs = Math.min(10_000, delayMs * 2);
    }
  };
  void loop();

  return { close: () => controller.abort() };
}

/**
 * The live session list: the whole list on connect and on every change.
 * @param {{
 *   onSessions: (sessions: any[]) => void,
 *   onState: (state: StreamState) => void,
 *   onUnauthorized: () => void,
 * }} handlers
 * @returns {{ close(): void }}
 */
export function openEventStream(handlers) {
  return openStream("/v1/dashboard/events", {
    onEvent(event, data) {
      if (event === "sessions") handlers.onSessions(JSON.parse(data));
    },
    onState: handlers.onState,
    onUnauthorized: handlers.onUnauthorized,
  });
}
