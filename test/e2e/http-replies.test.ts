import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { verifyWebhookSignature } from "../../src/channels/http/reply-webhook.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { openEventStream, type StreamEvent } from "../support/event-stream-reader.js";
import { makeDaemonHome, type DaemonHome } from "../support/daemon-home.js";

/**
 * Replies for HTTP clients that do not wait (issue 15): the reply webhook, retried from the
 * journal's outbox until it answers 2xx (across a kill -9), and `GET /v1/events`, resumable with
 * `Last-Event-ID`. The real daemon as a child process, the real SDK and the stand-in model, a
 * real HTTP server as the webhook's receiver.
 */
const JOHN = "+15551234567";
const SECRET = "webhook-secret-0123456789abcdef";
const WAIT_MS = 30_000;
const EXAMPLE = path.resolve(import.meta.dirname, "../../examples/line-chat.mjs");

interface Delivery {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  json: {
    id: number;
    chat_id: string;
    message_ids: string[];
    text: string;
    part: number;
    parts: number;
  };
  answered: number;
}

/** A webhook receiver: answers each delivery with what `answer` says, and keeps them all. */
class Receiver {
  readonly deliveries: Delivery[] = [];
  answer: (delivery: Delivery) => number = () => 200;
  private server: Server | undefined;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((request, response) => {
      let body = "";
      request.setEncoding("utf8");
      request.on("data", (chunk: string) => (body += chunk));
      request.on("end", () => {
        const delivery: Delivery = {
          id: String(request.headers["x-dispatch-delivery"]),
          timestamp: String(request.headers["x-dispatch-timestamp"]),
          signature: String(request.headers["x-dispatch-signature"]),
          body,
          json: JSON.parse(body) as Delivery["json"],
          answered: 0,
        };
        delivery.answered = this.answer(delivery);
        this.deliveries.push(delivery);
        response.writeHead(delivery.answered, { "content-type": "text/plain" });
        response.end("ok");
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  of(messageId: string): Delivery[] {
    return this.deliveries.filter((delivery) => delivery.json.message_ids.includes(messageId));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

let model: StandInModel;
let home: DaemonHome;
let daemon: DaemonProcess | undefined;
let env: NodeJS.ProcessEnv;
const receiver = new Receiver();

beforeAll(async () => {
  model = await startStandInModel();
  await receiver.start();
  home = await makeDaemonHome({
    modelUrl: model.url,
    contacts: { contacts: [{ name: "John Doe", tier: "favorite", handles: [JOHN] }] },
    config: { channels: { http: { webhook: { url: receiver.url, secret: SECRET } } } },
  });
  env = home.env;
  daemon = await startDaemonProcess(env);
}, 90_000);

afterAll(async () => {
  if (daemon) await daemon.stop("SIGKILL");
  await receiver.close();
  await model?.close();
  await home?.remove();
});

function poll<T>(read: () => T) {
  return expect.poll(read, { timeout: WAIT_MS, interval: 100 });
}

async function sendWithoutWait(messageId: string, text: string): Promise<void> {
  const response = await daemon!.api("POST", "/v1/messages", {
    chat_id: JOHN,
    text,
    message_id: messageId,
  });
  expect(response.status, JSON.stringify(response.json)).toBe(202);
}

function expectSigned(delivery: Delivery): void {
  expect(
    verifyWebhookSignature(SECRET, delivery.timestamp, delivery.body, delivery.signature),
  ).toBe(true);
  expect(delivery.signature).toMatch(/^sha256=[0-9a-f]{64}$/);
}

function events(url: string, lastEventId?: string) {
  return openEventStream(url, {
    authorization: `Bearer ${daemon!.token}`,
    ...(lastEventId === undefined ? {} : { "last-event-id": lastEventId }),
  });
}

/** The next `reply` event, skipping session state changes. */
async function nextReply(stream: { next(): Promise<StreamEvent> }): Promise<StreamEvent> {
  for (;;) {
    const event = await stream.next();
    expect(event.id).toMatch(/^\d+$/);
    if (event.event === "reply") return event;
  }
}

describe("the reply webhook", () => {
  it("is retried until it answers 2xx: a receiver that fails three times gets the reply four times, signed, then no more", async () => {
    receiver.answer = (delivery) =>
      delivery.json.message_ids.includes("w-1") && receiver.of("w-1").length < 3 ? 500 : 200;
    await sendWithoutWait("w-1", "Please remember the word pineapple");
    await poll(() => receiver.of("w-1").length).toBe(4);
    const attempts = receiver.of("w-1");
    expect(attempts.map((delivery) => delivery.answered)).toEqual([500, 500, 500, 200]);
    for (const delivery of attempts) {
      expectSigned(delivery);
      expect(delivery.body).toBe(attempts[0]!.body);
      expect(delivery.id).toBe(String(delivery.json.id));
    }
    expect(attempts[0]!.json).toMatchObject({
      chat_id: JOHN,
      message_ids: ["w-1"],
      part: 0,
      parts: 1,
    });
    expect(attempts[0]!.json.text).toContain("pineapple");
    // Another reply goes through at once; the acknowledged one is not delivered again.
    await sendWithoutWait("w-2", "And another thing");
    await poll(() => receiver.of("w-2").length).toBe(1);
    expect(receiver.of("w-1")).toHaveLength(4);
  }, 90_000);
});

describe("GET /v1/events", () => {
  it("gives a client that reconnects with Last-Event-ID every reply it missed, once", async () => {
    const url = `http://127.0.0.1:${daemon!.port}/v1/events`;
    const first = await events(url);
    expect(first.status).toBe(200);
    await sendWithoutWait("e-1", "First, while connected");
    const seen = await nextReply(first);
    expect(JSON.parse(seen.data)).toMatchObject({ chat_id: JOHN, message_ids: ["e-1"] });
    first.close();

    // Replied to while the client is away: the webhook tells us when it is recorded.
    await sendWithoutWait("e-2", "Second, while away");
    await poll(() => receiver.of("e-2").length).toBe(1);

    const again = await events(url, seen.id);
    expect(again.status).toBe(200);
    const missed = await nextReply(again);
    expect(JSON.parse(missed.data)).toMatchObject({ message_ids: ["e-2"] });
    expect(Number(missed.id)).toBeGreaterThan(Number(seen.id));
    // What comes next is the next reply, not a repeat of either.
    await sendWithoutWait("e-3", "Third, connected again");
    const live = await nextReply(again);
    expect(JSON.parse(live.data)).toMatchObject({ message_ids: ["e-3"] });
    again.close();
  }, 90_000);

  it("wants the token, and refuses a Last-Event-ID that is not an event id", async () => {
    const url = `http://127.0.0.1:${daemon!.port}/v1/events`;
    const anonymous = await fetch(url);
    expect(anonymous.status).toBe(401);
    const bad = await events(url, "yesterday");
    expect(bad.status).toBe(400);
    bad.close();
  });
});

describe("examples/line-chat.mjs", () => {
  it("bridges lines on stdin to the agent and prints its replies from /v1/events", async () => {
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve, reject) => {
        const child = spawn(process.execPath, [EXAMPLE, JOHN], {
          env: { ...env, DISPATCH_HOME: path.join(home.home, "dispatch") },
        });
        let stdout = "";
        let stderr = "";
        child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
        child.once("error", reject);
        child.once("exit", (code) => resolve({ code, stdout, stderr }));
        child.stdin.end("Please remember the word mango\n");
      },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("mango");
  }, 90_000);
});

describe("the reply webhook across a kill -9", () => {
  it("still delivers a reply recorded before the daemon was killed", async () => {
    receiver.answer = (delivery) => (delivery.json.message_ids.includes("k-1") ? 503 : 200);
    await sendWithoutWait("k-1", "Remember the word kiwi");
    // Recorded and tried at least once, not acknowledged: now kill the daemon.
    await poll(() => receiver.of("k-1").length).toBeGreaterThan(0);
    await daemon!.stop("SIGKILL");
    daemon = undefined;
    receiver.answer = () => 200;
    const before = receiver.of("k-1").length;
    daemon = await startDaemonProcess(env);
    await poll(() => receiver.of("k-1").some((delivery) => delivery.answered === 200)).toBe(true);
    const delivered = receiver.of("k-1");
    expect(delivered.length).toBeGreaterThan(before);
    const acknowledged = delivered.find((delivery) => delivery.answered === 200)!;
    expectSigned(acknowledged);
    expect(acknowledged.json.text).toContain("kiwi");
    expect(acknowledged.body).toBe(delivered[0]!.body);
  }, 120_000);
});
