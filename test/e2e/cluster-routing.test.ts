/**
 * Two nodes on one PostgreSQL database (issue 14, `docs/cluster.md`), each a real `dispatch start`
 * with its own home (no shared disk), the real SDK and CLI against the stand-in model:
 *
 * - a chat asked through either node is answered by one session, on the node that holds its
 *   lease, with its whole context, and the waiting request gets the reply wherever it came in;
 * - two new chats whose contacts share a name get two names, whichever node registers them;
 * - a new chat's session goes to the node with the most free live-session slots;
 * - a Signal message comes in on the node that has Signal, its session runs on the other, and
 *   the reply goes back out through the node that has Signal;
 * - `kill -9` of the owner's process group (a lost machine): the other node takes the session
 *   over once its lease runs out, resumes it from the transcript in PostgreSQL, and answers the
 *   message the dead node had accepted once.
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeView, SessionView } from "../../src/channels/http/control-plane.js";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { freePort, startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { createTestDatabase } from "../support/postgres-server.js";
import { makeTempHome } from "../support/real-manager.js";
import { startSignalCliStandIn, type SignalCliStandIn } from "../support/signal-cli-stand-in.js";
import { directText, type Sender } from "../support/signal-envelopes.js";

const JOHN = "+15551234567";
const OTHER_JOHN = "+15557654321";
const MARY = "+15550001111";

interface Node {
  id: string;
  env: NodeJS.ProcessEnv;
  home: { home: string; remove(): Promise<void> };
  daemon?: DaemonProcess;
}

const ACCOUNT = "+15550000000";
const JOHN_ON_SIGNAL: Sender = { number: JOHN, uuid: "0e1a2b3c-4d5e-4f60-8172-839405a6b7c8" };

let model: StandInModel;
let signalCli: SignalCliStandIn;
let database: pg.Client;
const nodes: Node[] = [];

async function makeNode(id: string, url: string, config: Record<string, unknown>): Promise<Node> {
  const home = await makeTempHome();
  const dir = path.join(home.home, "dispatch");
  await mkdir(dir, { recursive: true });
  await writeFile(
    path.join(dir, "contacts.json"),
    JSON.stringify({
      contacts: [
        { name: "John Doe", tier: "favorite", handles: [JOHN] },
        { name: "John Doe", tier: "favorite", handles: [OTHER_JOHN] },
        { name: "Mary Major", tier: "favorite", handles: [MARY] },
      ],
    }),
  );
  await writeFile(
    path.join(dir, "config.json"),
    JSON.stringify({ spareProcesses: 0, cluster: { leaseSeconds: 3 }, ...config }),
  );
  return {
    id,
    home,
    env: {
      PATH: process.env.PATH,
      HOME: home.home,
      DISPATCH_PORT: String(await freePort()),
      DISPATCH_LOG_LEVEL: "debug",
      DISPATCH_DATABASE_URL: url,
      DISPATCH_NODE_ID: id,
      ANTHROPIC_BASE_URL: model.url,
      ANTHROPIC_API_KEY: "test-key",
    },
  };
}

beforeAll(async () => {
  const url = await createTestDatabase();
  model = await startStandInModel();
  database = new pg.Client({ connectionString: url });
  await database.connect();
  signalCli = await startSignalCliStandIn({ account: ACCOUNT });
  // Node a has Signal and room for two live sessions; node b has eight, so new chats go there.
  nodes.push(
    await makeNode("node-a", url, {
      maxLiveSessions: 2,
      channels: { signal: { enabled: true, url: signalCli.url, account: ACCOUNT } },
    }),
    await makeNode("node-b", url, { maxLiveSessions: 8 }),
  );
  for (const node of nodes) {
    node.daemon = await startDaemonProcess(node.env, [], { detached: true });
  }
  // Both rows written and alive before anything is placed.
  for (;;) {
    const listed = (await nodes[0]!.daemon!.api("GET", "/v1/nodes")).json as NodeView[];
    if (listed.filter((view) => view.lease === "alive").length === 2) break;
    await sleep(100);
  }
});

afterAll(async () => {
  if (process.env.CLUSTER_DEBUG) {
    for (const node of nodes) {
      await writeFile(`/tmp/cluster-${node.id}.log`, node.daemon?.output() ?? "");
    }
  }
  for (const node of nodes) await node.daemon?.stop("SIGKILL");
  await database?.end();
  await signalCli?.close();
  await model?.close();
  for (const node of nodes) await node.home.remove();
});

async function send(
  node: Node,
  chatId: string,
  text: string,
  extra: Record<string, unknown> = {},
): Promise<{ reply: string | null; session_id: string; session_name: string }> {
  const response = await node.daemon!.api("POST", "/v1/messages", {
    chat_id: chatId,
    text,
    wait: true,
    ...extra,
  });
  expect(response.status, JSON.stringify(response.json)).toBe(200);
  return response.json as { reply: string | null; session_id: string; session_name: string };
}

async function session(node: Node, chatId: string): Promise<SessionView> {
  const response = await node.daemon!.api("GET", `/v1/sessions/${encodeURIComponent(chatId)}`);
  expect(response.status, JSON.stringify(response.json)).toBe(200);
  return response.json as SessionView;
}

describe("two nodes on one database", () => {
  it("answer a chat through either node from one session that keeps its context", async () => {
    const [a, b] = nodes as [Node, Node];
    const first = await send(a, JOHN, "remember the word cinnamon");
    expect(first.reply).toContain("I will remember cinnamon");
    const recall = await send(b, JOHN, "what word did I ask you to remember?");
    expect(recall.reply).toContain("You asked me to remember cinnamon");
    expect(recall.session_id).toBe(first.session_id);
    const owner = (await session(a, JOHN)).node;
    expect(owner).toBe("node-b");
    // One session: only the owner's log started or resumed one for John.
    const starters = nodes.filter((node) =>
      logLines(node).some(
        (line) => /"session-(start|resume)"/.test(line) && line.includes(`"chatId":"${JOHN}"`),
      ),
    );
    expect(starters.map((node) => node.id)).toEqual([owner]);
    const { rows } = await database.query<{ owner_node: string }>(
      "SELECT owner_node FROM chat_leases WHERE session_name = 'john-doe'",
    );
    expect(rows).toEqual([{ owner_node: owner }]);
  });

  it("give two new chats of contacts with one name two session names, whichever node registers them", async () => {
    const [a, b] = nodes as [Node, Node];
    const [mine, theirs] = await Promise.all([
      send(a, OTHER_JOHN, "hello from the other John"),
      send(b, MARY, "hello from Mary"),
    ]);
    expect(mine.session_name).toBe("john-doe-2");
    expect(theirs.session_name).toBe("mary-major");
    const { rows } = await database.query<{ chat_id: string; session_name: string }>(
      "SELECT chat_id, session_name FROM registry ORDER BY chat_id",
    );
    expect(rows).toEqual([
      { chat_id: MARY, session_name: "mary-major" },
      { chat_id: JOHN, session_name: "john-doe" },
      { chat_id: OTHER_JOHN, session_name: "john-doe-2" },
    ]);
  });

  it("send a reply out through the node that has its channel", async () => {
    const [a] = nodes as [Node, Node];
    await signalCli.whenConnected();
    signalCli.push(directText(JOHN_ON_SIGNAL, "what word did I ask you to remember?"));
    const deadline = Date.now() + 60_000;
    let sends: Record<string, unknown>[] = [];
    while (sends.length === 0 && Date.now() < deadline) {
      await sleep(100);
      sends = signalCli.sends();
    }
    expect(sends.map((send) => [send.recipient, send.message])).toEqual([
      [[JOHN], "[stand-in model] You asked me to remember cinnamon."],
    ]);
    // Taken in on node a, answered by node b's session, sent by node a.
    expect((await session(a, JOHN)).node).toBe("node-b");
    expect(
      logLines(nodes[1]!).some(
        (line) => line.includes('"session-start"') && line.includes(`"chatId":"${JOHN}"`),
      ),
    ).toBe(true);
    const { rows } = await database.query<{ channel: string; status: string }>(
      "SELECT channel, status FROM outbox WHERE chat_id = $1 AND channel = 'signal'",
      [JOHN],
    );
    expect(rows).toEqual([{ channel: "signal", status: "sent" }]);
  });

  it("refuse a restart or stop of a session another node runs, naming that node", async () => {
    const [a, b] = nodes as [Node, Node];
    const path = `/v1/sessions/${encodeURIComponent(JOHN)}`;
    for (const [method, route] of [
      ["POST", `${path}/restart`],
      ["DELETE", path],
    ] as const) {
      const refused = await a.daemon!.api(method, route);
      expect(refused.status).toBe(409);
      const error = (refused.json as { error: { code: string; message: string } }).error;
      expect(error.code).toBe("session_elsewhere");
      expect(error.message).toContain("node `node-b` (http://127.0.0.1:");
    }
    // The node that runs it restarts it.
    expect((await b.daemon!.api("POST", `${path}/restart`)).status).toBe(200);
  });

  it("fail a session over when its owner's machine is lost, answering what it had accepted once", async () => {
    const ownerId = (await session(nodes[0]!, JOHN)).node;
    const dead = nodes.find((node) => node.id === ownerId)!;
    const live = nodes.find((node) => node.id !== ownerId)!;
    // Accepted by the owner, whose turn is still running when its machine is lost.
    const cut = dead
      .daemon!.api("POST", "/v1/messages", {
        chat_id: JOHN,
        text: "[[delay 4000]] what word did I ask you to remember?",
        message_id: "cut-1",
        wait: true,
      })
      .catch((error: unknown) => error);
    // The turn runs (its model request is delayed) when the machine is lost.
    const requests = model.requests.length;
    while (model.requests.length === requests) await sleep(50);
    await dead.daemon!.killTree();
    await cut;
    // The client sends it again, to the node that is left.
    const again = await send(live, JOHN, "[[delay 4000]] what word did I ask you to remember?", {
      message_id: "cut-1",
    });
    expect(again.reply).toContain("You asked me to remember cinnamon");
    expect(
      logLines(live).filter(
        (line) =>
          line.includes('"session-take-over"') &&
          line.includes('"sessionName":"john-doe"') &&
          line.includes(`"from":"${ownerId}"`),
      ),
    ).toHaveLength(1);
    expect((await session(live, JOHN)).node).toBe(live.id);
    const { rows } = await database.query<{ status: string; parts: string }>(
      `SELECT status, (SELECT count(*) FROM outbox WHERE inbound_id = inbound.id) AS parts
       FROM inbound WHERE external_id = 'cut-1'`,
    );
    expect(rows).toEqual([{ status: "answered", parts: "1" }]);
  });
});

function logLines(node: Node): string[] {
  return node.daemon!.output().split("\n");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
