import { Agent, createServer, request, type Server, type ServerResponse } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { capConnections, type ShedReason } from "../../../src/channels/http/connection-cap.js";

/**
 * The connection cap on a plain node:http server. Regression guard for issue 12: 9,900 half-sent
 * requests were all held open, and nothing kept a flood of them from crowding out real clients.
 */
const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const step of cleanup.splice(0)) step();
});

interface CappedServer {
  server: Server;
  port: number;
  shed: ShedReason[];
  /** Resolves once the server has accepted `count` connections in all. */
  accepted(count: number): Promise<void>;
  /** Requests to `/slow` wait here until released. */
  slow: ServerResponse[];
  /** Connections the server has accepted so far. */
  acceptedSoFar(): number;
}

async function startCapped(maxConnections: number): Promise<CappedServer> {
  const slow: ServerResponse[] = [];
  const server = createServer((incoming, response) => {
    if (incoming.url === "/slow") slow.push(response);
    else response.end("ok");
  });
  const shed: ShedReason[] = [];
  capConnections(server, { maxConnections, onShed: (reason) => shed.push(reason) });
  let acceptedCount = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  server.on("connection", () => {
    acceptedCount += 1;
    for (const waiter of waiters.filter((entry) => entry.count <= acceptedCount)) waiter.resolve();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanup.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    shed,
    slow,
    acceptedSoFar: () => acceptedCount,
    accepted: (count) =>
      count <= acceptedCount
        ? Promise.resolve()
        : new Promise((resolve) => waiters.push({ count, resolve })),
  };
}

/**
 * A client that sends the start of a request head and never finishes it; resolves once the server
 * has accepted it, so that connections are accepted in the order they were opened.
 */
async function halfSent(capped: CappedServer): Promise<Socket> {
  const acceptedBefore = capped.acceptedSoFar();
  const socket = connect(capped.port, "127.0.0.1");
  socket.on("error", () => undefined);
  socket.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  cleanup.push(() => socket.destroy());
  await capped.accepted(acceptedBefore + 1);
  return socket;
}

const closed = (socket: Socket) =>
  new Promise<void>((resolve) => {
    if (socket.closed) resolve();
    else socket.once("close", () => resolve());
  });

/** A GET on its own connection; resolves with the status, or rejects when the server hangs up. */
function get(port: number, path: string, agent: false | Agent = false) {
  return new Promise<{ status: number; socket: Socket }>((resolve, reject) => {
    const outgoing = request({ host: "127.0.0.1", port, path, agent }, (response) => {
      response.resume();
      response.on("end", () =>
        resolve({ status: response.statusCode ?? 0, socket: outgoing.socket as Socket }),
      );
    });
    outgoing.on("error", reject);
    outgoing.end();
  });
}

describe("capConnections", () => {
  it("answers a new client when half-sent connections fill the cap, closing the oldest of them", async () => {
    const capped = await startCapped(3);
    const first = await halfSent(capped);
    const second = await halfSent(capped);
    const third = await halfSent(capped);

    const answer = await get(capped.port, "/");
    expect(answer.status).toBe(200);
    await closed(first);
    expect(capped.shed).toEqual(["half-sent"]);
    // The others are left alone: nothing but the cap closes a connection here.
    expect(second.closed).toBe(false);
    expect(third.closed).toBe(false);
  });

  it("keeps answering while far more half-sent connections arrive than the cap holds", async () => {
    const capped = await startCapped(20);
    const sockets: Socket[] = [];
    for (let index = 0; index < 100; index++) sockets.push(await halfSent(capped));
    expect((await get(capped.port, "/")).status).toBe(200);
    // 101 connections came to a server holding 20: 81 were shed, the oldest first.
    await Promise.all(sockets.slice(0, 81).map(closed));
    expect(capped.shed).toEqual(Array.from({ length: 81 }, () => "half-sent"));
    expect(sockets.slice(81).every((socket) => !socket.closed)).toBe(true);
  });

  // Found by the end-to-end test: a client's pooled connection, idle since its last request, was
  // the oldest one not busy and went first when half-sent connections flooded in, so the request
  // the client was just sending on it failed ("other side closed").
  it("keeps a served keep-alive connection while half-sent ones can go instead", async () => {
    const capped = await startCapped(3);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanup.push(() => agent.destroy());
    const pooled = await get(capped.port, "/", agent);
    const firstHalfSent = await halfSent(capped);
    await halfSent(capped);
    await halfSent(capped);
    await closed(firstHalfSent);
    expect(capped.shed).toEqual(["half-sent"]);

    const again = await get(capped.port, "/", agent);
    expect(again.status).toBe(200);
    expect(again.socket).toBe(pooled.socket);
  });

  it("closes an idle keep-alive connection before one whose request is being answered", async () => {
    const capped = await startCapped(2);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanup.push(() => agent.destroy());
    const idle = await get(capped.port, "/", agent);
    expect(idle.socket.closed).toBe(false);

    const waiting = get(capped.port, "/slow");
    while (capped.slow.length === 0) await new Promise((resolve) => setImmediate(resolve));

    expect((await get(capped.port, "/")).status).toBe(200);
    await closed(idle.socket);
    capped.slow[0]!.end("late");
    expect((await waiting).status).toBe(200);
    expect(capped.shed).toEqual(["idle"]);
  });

  it("refuses a new connection when every connection held is busy with a request", async () => {
    const capped = await startCapped(2);
    const busy = [get(capped.port, "/slow"), get(capped.port, "/slow")];
    while (capped.slow.length < 2) await new Promise((resolve) => setImmediate(resolve));

    await expect(get(capped.port, "/")).rejects.toThrow();
    expect(capped.shed).toEqual(["newcomer"]);
    for (const response of capped.slow) response.end("done");
    expect((await Promise.all(busy)).map((answer) => answer.status)).toEqual([200, 200]);
  });
});
