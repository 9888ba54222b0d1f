/**
 * The daemon as a node (issue 14): a real `dispatch start` with the real SDK and its CLI against
 * the stand-in model reports itself in `GET /v1/nodes` and as the `node` of a session it served,
 * keeps its row fresh with heartbeats that carry its pool, and leaves at SIGTERM. Without a
 * database its rows are the embedded adapter's, in the process, so a second start is one fresh
 * node again.
 */

import os from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultNodeId } from "../../src/config/database.js";
import type { NodeView, SessionView } from "../../src/channels/http/control-plane.js";
import { STAND_IN_PREFIX } from "../../src/stand-in/compose-reply.js";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { makeDaemonHome, type DaemonHome } from "../support/daemon-home.js";

const JOHN = "+15551234567";

let model: StandInModel;
let home: DaemonHome;
let env: NodeJS.ProcessEnv;
let daemon: DaemonProcess | undefined;

beforeAll(async () => {
  model = await startStandInModel();
  home = await makeDaemonHome({
    modelUrl: model.url,
    contacts: { contacts: [{ name: "John Doe", tier: "favorite", handles: [JOHN] }] },
    // A heartbeat every second (a third of the lease), so the pool's change shows soon.
    config: { maxLiveSessions: 3, spareProcesses: 0, cluster: { leaseSeconds: 3 } },
    env: { DISPATCH_LOG_LEVEL: "debug" },
  });
  env = home.env;
});

afterAll(async () => {
  if (daemon) await daemon.stop("SIGKILL");
  await model.close();
  await home.remove();
});

async function nodes(): Promise<NodeView[]> {
  const response = await daemon!.api("GET", "/v1/nodes");
  expect(response.status, JSON.stringify(response.json)).toBe(200);
  return response.json as NodeView[];
}

/** Polls `/v1/nodes` until its one node matches, for a heartbeat to land. */
async function nodeEventually(matches: (node: NodeView) => boolean): Promise<NodeView> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const [node] = await nodes();
    if (node && matches(node)) return node;
    if (Date.now() > deadline) throw new Error(`no heartbeat matched: ${JSON.stringify(node)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("dispatch start as a node", () => {
  it("lists itself in /v1/nodes, owns the sessions it serves, and leaves at SIGTERM", async () => {
    daemon = await startDaemonProcess(env);
    const nodeId = defaultNodeId(os.hostname(), daemon.port);
    const first = await nodes();
    expect(first).toEqual([
      expect.objectContaining({
        node_id: nodeId,
        address: `http://127.0.0.1:${daemon.port}`,
        state: "serving",
        lease: "alive",
        pool: { live: 0, total: 3 },
        channels: ["http"],
        chats: 0,
        self: true,
      }),
    ]);

    const sent = await daemon.api("POST", "/v1/messages", {
      chat_id: JOHN,
      text: "hello",
      wait: true,
    });
    expect(sent.status, JSON.stringify(sent.json)).toBe(200);
    expect((sent.json as { reply: string }).reply).toContain(STAND_IN_PREFIX);

    const session = (await daemon.api("GET", `/v1/sessions/${encodeURIComponent(JOHN)}`))
      .json as SessionView;
    expect(session.node).toBe(nodeId);
    const list = (await daemon.api("GET", "/v1/sessions")).json as SessionView[];
    expect(list.map((view) => [view.chat_id, view.node])).toEqual([[JOHN, nodeId]]);

    // The next heartbeat carries the live session's slot; its start time stays.
    const beating = await nodeEventually((node) => node.pool.live === 1);
    expect(beating).toMatchObject({ chats: 1, started_at: first[0]!.started_at, lease: "alive" });

    expect(await daemon.stop("SIGTERM")).toBe(0);
    const output = daemon.output();
    const left = output.indexOf('"msg":"node-leave"');
    expect(left, output).toBeGreaterThan(output.indexOf('"msg":"manager-stop"'));
    expect(output.indexOf('"msg":"daemon-stopped"')).toBeGreaterThan(left);

    // Started again: one node, this run's, serving with a later start time.
    daemon = await startDaemonProcess(env);
    const again = await nodes();
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({ node_id: nodeId, state: "serving", chats: 1 });
    expect(Date.parse(again[0]!.started_at)).toBeGreaterThan(Date.parse(first[0]!.started_at));
  }, 120_000);
});
