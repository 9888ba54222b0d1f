import { Agent, request, type IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createHttpApi } from "../../../src/channels/http/http-api.js";
import { startHttpServer, type HttpServer } from "../../../src/channels/http/http-server.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { FakeControlPlane } from "../../support/fake-control-plane.js";
import { deferred } from "../../support/deferred.js";

const TOKEN = "server-test-token";
const servers: HttpServer[] = [];
const agents: Agent[] = [];

afterEach(async () => {
  for (const agent of agents.splice(0)) agent.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(options: { port?: number; closeGraceMs?: number } = {}) {
  const control = new FakeControlPlane();
  const app = createHttpApi({ control, token: TOKEN, logger: createMemoryLogger() });
  const server = await startHttpServer({ app, port: options.port ?? 0, ...options });
  servers.push(server);
  return { server, control };
}

interface Answer {
  response: IncomingMessage;
  body: string;
  socket: Socket;
}

/** A request through a keep-alive agent; resolves with the response, its body and its socket. */
function keepAliveRequest(
  agent: Agent,
  port: number,
  options: { method: string; path: string; body?: string },
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: "127.0.0.1",
        port,
        method: options.method,
        path: options.path,
        agent,
        headers: { Authorization: `Bearer ${TOKEN}` },
      },
      (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () => resolve({ response, body, socket: outgoing.socket as Socket }));
      },
    );
    outgoing.on("error", reject);
    outgoing.end(options.body);
  });
}

const keepAliveGet = (agent: Agent, port: number, path: string) =>
  keepAliveRequest(agent, port, { method: "GET", path });

const keepAlivePost = (agent: Agent, port: number, path: string, body: unknown) =>
  keepAliveRequest(agent, port, { method: "POST", path, body: JSON.stringify(body) });

const socketClosed = (socket: Socket) =>
  new Promise<void>((resolve) => {
    if (socket.destroyed) resolve();
    else socket.once("close", () => resolve());
  });

describe("startHttpServer", () => {
  it("listens on 127.0.0.1 by default and reports the port it got", async () => {
    const { server } = await start();
    expect(server.port).toBeGreaterThan(0);
    const response = await fetch(`http://127.0.0.1:${server.port}/healthz`);
    expect(response.status).toBe(200);
  });

  it("reports a port in use as port_in_use, saying which port and how to change it", async () => {
    const { server } = await start();
    const failure = await start({ port: server.port }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(DispatchError);
    expect(failure).toMatchObject({ code: "port_in_use" });
    const message = (failure as DispatchError).message;
    expect(message).toContain(`Port ${server.port}`);
    expect(message).toContain('"port" in ~/dispatch/config.json');
    expect(message).toContain("DISPATCH_PORT");
  });

  it("close() ends idle keep-alive connections at once", async () => {
    const { server } = await start({ closeGraceMs: 60_000 });
    const agent = new Agent({ keepAlive: true });
    agents.push(agent);
    const { response, socket } = await keepAliveGet(agent, server.port, "/healthz");
    expect(response.headers.connection).toBe("keep-alive");
    expect(socket.destroyed).toBe(false);

    const started = Date.now();
    await server.close();
    await socketClosed(socket);
    expect(Date.now() - started).toBeLessThan(2_000);
    await expect(fetch(`http://127.0.0.1:${server.port}/healthz`)).rejects.toThrow();
  });

  it("close() lets a request in flight finish, then closes its connection", async () => {
    const { server, control } = await start({ closeGraceMs: 60_000 });
    const gate = deferred();
    control.gate = gate.promise;
    const agent = new Agent({ keepAlive: true });
    agents.push(agent);
    const pending = keepAlivePost(agent, server.port, "/v1/messages", {
      chat_id: "+1555",
      text: "slow",
      wait: true,
    });
    // Wait until the request has reached the control plane.
    while (control.submits.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));

    let closed = false;
    const closing = server.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(closed).toBe(false);

    gate.resolve();
    const { response, body } = await pending;
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(body)).toMatchObject({ reply: "re: slow" });
    expect(response.headers.connection).toBe("close");
    await closing;
    expect(closed).toBe(true);
  });

  it("close() cuts off a request still running after the grace period", async () => {
    const { server, control } = await start({ closeGraceMs: 100 });
    control.gate = new Promise<void>(() => undefined);
    const request = fetch(`http://127.0.0.1:${server.port}/v1/messages`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ chat_id: "+1555", text: "never answered", wait: true }),
    });
    while (control.submits.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const started = Date.now();
    await server.close();
    expect(Date.now() - started).toBeLessThan(2_000);
    await expect(request).rejects.toThrow();
  });

  it("close() can be called twice", async () => {
    const { server } = await start();
    await Promise.all([server.close(), server.close()]);
    await expect(server.close()).resolves.toBeUndefined();
  });
});
