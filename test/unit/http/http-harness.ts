import { request as httpRequest } from "node:http";
import { expect } from "vitest";
import { createHttpApi, type HttpApiLimits } from "../../../src/channels/http/http-api.js";
import { startHttpServer, type HttpServer } from "../../../src/channels/http/http-server.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { FakeControlPlane } from "../../support/fake-control-plane.js";

/** Starts the API on a free port of 127.0.0.1 over a FakeControlPlane; `closeApis` stops them. */
export const TOKEN = "test-token-0123456789";
const servers: HttpServer[] = [];

/** For afterEach: closes every server the test started. */
export async function closeApis(): Promise<void> {
  await Promise.all(servers.splice(0).map((server) => server.close()));
}

export interface Harness {
  base: string;
  port: number;
  control: FakeControlPlane;
  logger: ReturnType<typeof createMemoryLogger>;
  clock: { now: () => number; advance(ms: number): void };
  /** fetch with the right token unless headers say otherwise. */
  call(path: string, init?: RequestInit): Promise<Response>;
  post(path: string, body: unknown): Promise<Response>;
}

export async function startApi(
  options: { limits?: Partial<HttpApiLimits>; control?: FakeControlPlane } = {},
): Promise<Harness> {
  const { limits = {}, control = new FakeControlPlane() } = options;
  const logger = createMemoryLogger();
  let time = 0;
  const clock = {
    now: () => time,
    advance: (ms: number) => {
      time += ms;
    },
  };
  const app = createHttpApi({ control, token: TOKEN, logger, limits, now: clock.now });
  const server = await startHttpServer({ app, port: 0 });
  servers.push(server);
  const base = `http://127.0.0.1:${server.port}`;
  const call = (path: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, {
      ...init,
      headers: { Authorization: `Bearer ${TOKEN}`, ...(init.headers as Record<string, string>) },
    });
  const post = (path: string, body: unknown) =>
    call(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  return { base, port: server.port, control, logger, clock, call, post };
}

export interface ErrorJson {
  error: { code: string; message: string };
}

export async function expectError(
  response: Response,
  status: number,
  code: string,
  messagePattern?: RegExp,
): Promise<string> {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  const body = (await response.json()) as ErrorJson;
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(10);
  if (messagePattern) expect(body.error.message).toMatch(messagePattern);
  return body.error.message;
}

/** Raw node:http request, for bodies fetch cannot send (chunked, or a lying Content-Length). */
export function rawRequest(
  port: number,
  options: { path: string; headers: Record<string, string | number> },
  write: (request: ReturnType<typeof httpRequest>) => void,
): Promise<{ status: number; body: string; connection: string | undefined }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({
      host: "127.0.0.1",
      port,
      method: "POST",
      path: options.path,
      headers: options.headers,
    });
    request.on("response", (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () =>
        resolve({
          status: response.statusCode ?? 0,
          body,
          connection: response.headers.connection,
        }),
      );
      response.on("error", reject);
    });
    // An error after the response (the server closing while we write) settles nothing more.
    request.on("error", (error) => reject(error));
    write(request);
  });
}
