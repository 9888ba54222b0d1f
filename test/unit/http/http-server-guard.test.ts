import { Agent, request } from "node:http";
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createHttpApi } from "../../../src/channels/http/http-api.js";
import {
  startHttpServer,
  type HttpServer,
  type HttpServerOptions,
} from "../../../src/channels/http/http-server.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { FakeControlPlane } from "../../support/fake-control-plane.js";

/**
 * What the server refuses before any route runs (issue 12): requests addressed to a host name it
 * does not answer for (DNS rebinding), and clients that take too long to send their request.
 */
const TOKEN = "guard-test-token-0123456789";
const servers: HttpServer[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(options: Partial<HttpServerOptions> = {}) {
  const control = new FakeControlPlane();
  const app = createHttpApi({ control, token: TOKEN, logger: createMemoryLogger() });
  const server = await startHttpServer({ app, port: 0, ...options });
  servers.push(server);
  return { server, control };
}

interface Answer {
  status: number;
  body: string;
}

/** A request with the Host header given (fetch does not let one set it). */
function requestWithHost(port: number, path: string, host: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: "127.0.0.1",
        port,
        path,
        agent: false,
        headers: { Host: host, Authorization: `Bearer ${TOKEN}` },
      },
      (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
      },
    );
    outgoing.on("error", reject);
    outgoing.end();
  });
}

/** Writes `text` on a raw connection and collects everything until the server closes it. */
function rawExchange(port: number, text: string): { socket: Socket; received: Promise<string> } {
  const socket = connect(port, "127.0.0.1");
  sockets.push(socket);
  let data = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => (data += chunk));
  socket.on("error", () => undefined);
  socket.write(text);
  const received = new Promise<string>((resolve) => socket.once("close", () => resolve(data)));
  return { socket, received };
}

function errorOf(answer: Answer): { code: string; message: string } {
  return (JSON.parse(answer.body) as { error: { code: string; message: string } }).error;
}

describe("the HTTP server's Host check (DNS rebinding)", () => {
  it("refuses a request addressed to another host with 421 host_not_allowed, naming the config key", async () => {
    const { server, control } = await start();
    for (const path of ["/healthz", "/v1/sessions", "/metrics"]) {
      const answer = await requestWithHost(server.port, path, `evil.example:${server.port}`);
      expect(answer.status, path).toBe(421);
      const error = errorOf(answer);
      expect(error.code).toBe("host_not_allowed");
      expect(error.message).toContain('Host "evil.example:');
      expect(error.message).toContain("channels.http.allowedHosts");
    }
    // Refused before any route ran: the control plane saw nothing.
    expect(control.submits).toEqual([]);
  });

  it("serves 127.0.0.1, localhost and [::1], with or without a port, in any case", async () => {
    const { server } = await start();
    for (const host of [
      "127.0.0.1",
      `127.0.0.1:${server.port}`,
      "localhost",
      `LocalHost:${server.port}`,
      "[::1]",
      `[::1]:${server.port}`,
    ]) {
      expect((await requestWithHost(server.port, "/healthz", host)).status, host).toBe(200);
    }
  });

  it("serves the names in allowedHosts too (a reverse proxy's), and still refuses others", async () => {
    const { server } = await start({ allowedHosts: ["dispatch.example.com"] });
    expect((await requestWithHost(server.port, "/healthz", "dispatch.example.com")).status).toBe(
      200,
    );
    expect(
      (await requestWithHost(server.port, "/v1/sessions", "Dispatch.Example.com:443")).status,
    ).toBe(200);
    expect((await requestWithHost(server.port, "/healthz", "localhost")).status).toBe(200);
    expect((await requestWithHost(server.port, "/healthz", "example.com")).status).toBe(421);
  });

  it("refuses Host headers that only contain a loopback name", async () => {
    const { server } = await start();
    for (const host of ["evil.example@127.0.0.1", "127.0.0.1.evil.example", "localhost.", "x"]) {
      expect((await requestWithHost(server.port, "/healthz", host)).status, host).toBe(421);
    }
  });

  it("refuses a request without a Host header", async () => {
    const { server } = await start();
    const { received } = rawExchange(server.port, "GET /healthz HTTP/1.0\r\n\r\n");
    const response = await received;
    expect(response).toMatch(/^HTTP\/1\.1 421 /);
    expect(response).toContain('"code":"host_not_allowed"');
    expect(response).toContain("got no Host header");
  });
});

describe("the HTTP server's timeouts (slow clients)", () => {
  it("answers 408 and closes a connection that has not sent its request head in time", async () => {
    const { server } = await start({ limits: { headersTimeoutMs: 200, requestTimeoutMs: 200 } });
    const { received } = rawExchange(server.port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    expect(await received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it("answers 408 and closes a connection that sends nothing at all", async () => {
    const { server } = await start({ limits: { headersTimeoutMs: 200, requestTimeoutMs: 200 } });
    const { received } = rawExchange(server.port, "");
    expect(await received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it("answers 408 and closes a connection whose body does not arrive in time", async () => {
    const { server } = await start({ limits: { headersTimeoutMs: 200, requestTimeoutMs: 300 } });
    const { received } = rawExchange(
      server.port,
      "POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
        `${TOKEN}\r\nContent-Length: 100\r\n\r\n{"chat_id":`,
    );
    expect(await received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it("closes a keep-alive connection left idle past keepAliveTimeoutMs, and says so", async () => {
    const { server } = await start({ limits: { keepAliveTimeoutMs: 1_000 } });
    const agent = new Agent({ keepAlive: true });
    const { socket, keepAlive } = await new Promise<{ socket: Socket; keepAlive?: string }>(
      (resolve, reject) => {
        const outgoing = request(
          { host: "127.0.0.1", port: server.port, path: "/healthz", agent },
          (response) => {
            response.resume();
            response.on("end", () =>
              resolve({
                socket: outgoing.socket as Socket,
                keepAlive: String(response.headers["keep-alive"]),
              }),
            );
          },
        );
        outgoing.on("error", reject);
        outgoing.end();
      },
    );
    expect(keepAlive).toBe("timeout=1");
    await new Promise<void>((resolve) => socket.once("close", () => resolve()));
    agent.destroy();
  });

  it("does not cut off a whole request whose reply takes longer than the request timeout", async () => {
    const { server, control } = await start({
      limits: { headersTimeoutMs: 100, requestTimeoutMs: 100 },
    });
    let release!: () => void;
    control.gate = new Promise<void>((resolve) => (release = resolve));
    const pending = fetch(`http://127.0.0.1:${server.port}/v1/messages`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ chat_id: "+15551234567", text: "take your time", wait: true }),
    });
    while (control.submits.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    // Long enough for the server's timeout check (every 100 ms here) to run several times.
    await new Promise((resolve) => setTimeout(resolve, 600));
    release();
    const response = await pending;
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ reply: "re: take your time" });
  });
});
