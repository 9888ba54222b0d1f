/**
 * Three daemons on one PostgreSQL database (issue 14), with the real SDK and its CLI against the
 * stand-in model: a dozen contacts talk through every node in turn and keep their context; the
 * nodes list each other and share the sessions; a `kill -9` of one node's process group under
 * load loses and repeats nothing, and its sessions resume on the other nodes with their context;
 * a graceful stop hands a node's chats back.
 *
 * The tests run in order on one cluster. Failover times are measured and printed, never asserted
 * (timing goals belong in `npm run bench`).
 */
import { setMaxListeners } from "node:events";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionView } from "../../src/channels/http/control-plane.js";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { startCluster, type Cluster, type ClusterNode } from "../support/cluster.js";
import { isRunning, processesBelow } from "../support/daemon-process.js";
import { createTestDatabase } from "../support/postgres-server.js";
import { sendUntilAnswered, type PostMessage } from "../soak/contact-client.js";
import { median } from "../soak/failover-times.js";
import { createSeededRandom } from "../soak/seeded-random.js";

const NODES = 3;
const LEASE_SECONDS = 5;
const WORDS = [
  "amber",
  "basil",
  "cobalt",
  "dahlia",
  "ember",
  "fennel",
  "garnet",
  "hazel",
  "indigo",
  "juniper",
  "kestrel",
  "lilac",
];

interface Contact {
  /** `k07`: the prefix of its markers (`k07-m0002`), which the stand-in reads back. */
  key: string;
  chatId: string;
  word: string;
}

const CONTACTS: Contact[] = WORDS.map((word, index) => ({
  key: `k${String(index + 1).padStart(2, "0")}`,
  chatId: `+1555300${String(index + 1).padStart(4, "0")}`,
  word,
}));

let model: StandInModel;
let cluster: Cluster;
let databaseUrl: string;

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  model = await startStandInModel();
  cluster = await startCluster({
    nodes: NODES,
    databaseUrl,
    modelUrl: model.url,
    contacts: {
      contacts: CONTACTS.map((contact) => ({
        name: `Cluster Contact ${contact.key}`,
        tier: "favorite",
        handles: [contact.chatId],
      })),
    },
    // Room for every session on every node (no eviction moves a session), no spare processes
    // (memory), and a short lease so a failover comes soon.
    config: {
      maxLiveSessions: CONTACTS.length,
      spareProcesses: 0,
      cluster: { leaseSeconds: LEASE_SECONDS },
    },
  });
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
  await model?.close();
});

interface Reply {
  chat_id: string;
  session_id: string;
  session_name: string;
  reply: string | null;
}

/** `POST /v1/messages` with `wait: true` through `node`; fails the test on anything but 200. */
async function send(node: ClusterNode, contact: Contact, text: string): Promise<Reply> {
  const answer = await node.api("POST", "/v1/messages", {
    chat_id: contact.chatId,
    text,
    wait: true,
  });
  expect(answer.status, `${node.id} ${contact.key}: ${JSON.stringify(answer.json)}`).toBe(200);
  return answer.json as Reply;
}

/**
 * Runs `work` on every item, at most `limit` at once (a dozen agent starts at once is slow).
 * A failure stops the start of more items; the first is thrown once every item begun has ended,
 * so nothing of this test still runs in the next.
 */
async function inBatches<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      const index = next++;
      await work(items[index]!, index).catch((error: unknown) => {
        failed = true;
        throw error;
      });
    }
  };
  const ended = await Promise.allSettled(
    Array.from({ length: Math.min(limit, items.length) }, worker),
  );
  for (const result of ended) if (result.status === "rejected") throw result.reason;
}

async function eventually<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function sessionsByChat(views: readonly SessionView[]): Map<string, SessionView> {
  return new Map(views.map((view) => [view.chat_id, view]));
}

/** The markers a contact's session holds, read back through `[[markers]]` (`compose-reply.ts`). */
async function markersOf(
  node: ClusterNode,
  contact: Contact,
): Promise<{ said: string[]; answered: string[] }> {
  const { reply } = await send(node, contact, "[[markers]]");
  const match = /Markers said: (.*?)\. Markers answered: (.*?)\./.exec(reply ?? "");
  expect(match, `${contact.key}: ${reply}`).not.toBeNull();
  const list = (text: string) => (text === "(none)" ? [] : text.split(" "));
  return { said: list(match![1]!), answered: list(match![2]!) };
}

/** The running node that runs the most of these sessions. */
/**
 * A node's session views once each names a running node: a node sees other nodes' sessions as
 * of its last look at the leases (every 5 s, docs/cluster.md), and a moved session is null until
 * then.
 */
async function settledViews(node: ClusterNode): Promise<Map<string, SessionView>> {
  const running = new Set(cluster.running().map((each) => each.id));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const views = sessionsByChat(await node.sessions());
    const settled = CONTACTS.every((contact) => running.has(views.get(contact.chatId)?.node ?? ""));
    if (settled || Date.now() > deadline) return views;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function busiest(sessions: ReadonlyMap<string, SessionView>): ClusterNode {
  const held = (node: ClusterNode) =>
    [...sessions.values()].filter((view) => view.node === node.id).length;
  return cluster.running().sort((a, b) => held(b) - held(a))[0]!;
}

function count(list: readonly string[], item: string): number {
  return list.filter((entry) => entry === item).length;
}

describe("three daemons on one PostgreSQL database", () => {
  /** Each contact's session id, from its first turn. */
  const sessionIds = new Map<string, string>();

  it("lists the three nodes, serving, on every node", async () => {
    const ids = cluster.nodes.map((node) => node.id).sort();
    for (const node of cluster.nodes) {
      const nodes = await node.nodes();
      expect(nodes.map((view) => view.node_id).sort()).toEqual(ids);
      for (const view of nodes) {
        expect(view).toMatchObject({ state: "serving", self: view.node_id === node.id });
        const asked = cluster.node(view.node_id);
        expect(view.address).toBe(`http://127.0.0.1:${asked.port}`);
      }
    }
  });

  it("keeps each contact's context whichever node is asked", async () => {
    // Contact i asks node i, then node i + 1, then node i + 2 (round the three).
    const via = (index: number, turn: number) => cluster.nodes[(index + turn) % NODES]!;
    await inBatches(CONTACTS, 4, async (contact, index) => {
      const remembered = await send(via(index, 0), contact, `remember the word ${contact.word}`);
      expect(remembered.reply).toContain(`I will remember ${contact.word}`);
      sessionIds.set(contact.chatId, remembered.session_id);

      const noted = await send(via(index, 1), contact, `${contact.key}-m0001 a note`);
      expect(noted.reply).toContain(`Answering ${contact.key}-m0001.`);
      expect(noted.session_id).toBe(remembered.session_id);

      const recalled = await send(via(index, 2), contact, "what word did I ask you to remember?");
      expect(recalled.reply).toContain(`You asked me to remember ${contact.word}.`);
      expect(recalled.session_id).toBe(remembered.session_id);
    });
  }, 600_000);

  it("runs every session on one of the nodes, spread over more than one, with chats that add up", async () => {
    const ids = new Set(cluster.nodes.map((node) => node.id));
    for (const asked of cluster.nodes) {
      const sessions = await asked.sessions();
      expect(sessions.map((view) => view.chat_id).sort()).toEqual(
        CONTACTS.map((contact) => contact.chatId).sort(),
      );
      for (const view of sessions)
        expect(ids, `${view.chat_id}: ${view.node}`).toContain(view.node);
      const owners = new Set(sessions.map((view) => view.node));
      expect(owners.size, JSON.stringify([...owners])).toBeGreaterThan(1);

      const nodes = await asked.nodes();
      for (const node of nodes) {
        const held = sessions.filter((view) => view.node === node.node_id).length;
        expect(node.chats, `${node.node_id} as ${asked.id} sees it`).toBe(held);
      }
      expect(nodes.reduce((sum, node) => sum + node.chats, 0)).toBe(CONTACTS.length);
    }
  });

  it("answers every accepted message exactly once across a kill -9 of a node's process group, and moves its sessions with their context", async () => {
    const before = await settledViews(cluster.running()[0]!);
    // The node that runs the most sessions dies.
    const victim = busiest(before);
    const lost = CONTACTS.filter((contact) => before.get(contact.chatId)!.node === victim.id);
    expect(lost.length, "the victim runs sessions").toBeGreaterThan(0);
    const survivors = cluster.nodes.filter((node) => node !== victim);

    // Every contact sends a slow message, through the nodes in turn (the victim too); a request
    // the kill cuts is sent again, with the same message_id, to a node that lives.
    const deadline = new AbortController();
    setMaxListeners(0, deadline.signal);
    const random = createSeededRandom(14);
    const marker = (contact: Contact) => `${contact.key}-m0002`;
    const outcomes = CONTACTS.map((contact, index) => {
      const firstNode = cluster.nodes[index % NODES]!;
      let attempt = 0;
      const body: PostMessage = {
        chat_id: contact.chatId,
        text: `${marker(contact)} in flight [[delay 4000]]`,
        message_id: marker(contact),
        wait: true,
      };
      return sendUntilAnswered(
        {
          endpoint: () => {
            const node = attempt++ === 0 ? firstNode : survivors[attempt % survivors.length]!;
            return { port: node.port, token: node.token };
          },
          random,
          signal: deadline.signal,
        },
        body,
      );
    });
    const timer = setTimeout(() => deadline.abort(), 240_000);

    // The kill comes while the victim's agents are in the turns of those messages.
    await eventually("the victim's agents in their turns", () => {
      const running = lost.filter((contact) =>
        model
          .mainRequests()
          .some((request) => request.userTexts.at(-1)?.includes(marker(contact)) === true),
      );
      return running.length === lost.length ? running : undefined;
    });
    // Its agent CLIs, each in a process group of its own, die with it: a machine loss.
    const agents = processesBelow(victim.pid!).map((entry) => entry.pid);
    expect(agents.length, "the victim's agent processes").toBeGreaterThanOrEqual(lost.length);
    const killedAt = Date.now();
    await victim.kill();
    expect(agents.filter(isRunning), "processes left of the victim").toEqual([]);

    const answered = await Promise.all(outcomes);
    clearTimeout(timer);
    for (const [index, outcome] of answered.entries()) {
      const contact = CONTACTS[index]!;
      expect(outcome.error, contact.key).toBeUndefined();
      expect(outcome.reply, contact.key).toContain(`Answering ${marker(contact)}`);
    }

    // The victim's sessions were taken over by the survivors, each logged with where it came from.
    const takeOvers = (await cluster.logLines("session-take-over")).filter(
      (line) => line.from === victim.id && Date.parse(line.time) >= killedAt,
    );
    const failoverMs = takeOvers.map((line) => Date.parse(line.time) - killedAt);
    console.log(
      `kill -9 of ${victim.id} (${lost.length} sessions): ${takeOvers.length} take-overs, ` +
        `failover median ${median(failoverMs)} ms, max ${Math.max(...failoverMs)} ms`,
    );
    const after = sessionsByChat(await survivors[0]!.sessions());
    for (const contact of lost) {
      const name = before.get(contact.chatId)!.session_name;
      // Its latest move, in case it moved again since.
      const line = takeOvers.filter((candidate) => candidate.sessionName === name).at(-1);
      expect(line, `${name}: no session-take-over from ${victim.id}`).toBeDefined();
      expect(survivors.map((node) => node.id)).toContain(line!.loggedBy);
      expect(after.get(contact.chatId)!.node, contact.key).toBe(line!.loggedBy);
    }

    // Each message answered once in its session's context, and the moved sessions kept theirs.
    await inBatches(CONTACTS, 4, async (contact, index) => {
      const node = survivors[index % survivors.length]!;
      const markers = await markersOf(node, contact);
      expect(count(markers.answered, marker(contact)), JSON.stringify(markers)).toBe(1);
      expect(count(markers.answered, `${contact.key}-m0001`), JSON.stringify(markers)).toBe(1);
      const recalled = await send(node, contact, "what word did I ask you to remember?");
      expect(recalled.reply).toContain(`You asked me to remember ${contact.word}.`);
      expect(recalled.session_id).toBe(sessionIds.get(contact.chatId));
    });

    await victim.start();
  }, 600_000);

  it("hands a stopped node's chats back at a graceful stop", async () => {
    const before = await settledViews(cluster.running()[0]!);
    const stopped = busiest(before);
    const held = CONTACTS.filter((contact) => before.get(contact.chatId)!.node === stopped.id);
    expect(held.length, "the stopped node runs sessions").toBeGreaterThan(0);
    const others = cluster.nodes.filter((node) => node !== stopped);

    const stoppedAt = Date.now();
    expect(await stopped.stop("SIGTERM")).toBe(0);
    // Its row says it left (so its leases were handed back) before anyone took its chats.
    const row = (await others[0]!.nodes()).find((view) => view.node_id === stopped.id);
    expect(row?.state).toBe("gone");
    // Handed back, not left to run out: no lease names it any more.
    const database = new pg.Client({ connectionString: databaseUrl });
    await database.connect();
    const { rows } = await database
      .query<{ held: string }>("SELECT count(*) AS held FROM chat_leases WHERE owner_node = $1", [
        stopped.id,
      ])
      .finally(() => database.end());
    expect(rows).toEqual([{ held: "0" }]);

    await inBatches(held, 4, async (contact, index) => {
      const node = others[index % others.length]!;
      const recalled = await send(node, contact, "what word did I ask you to remember?");
      expect(recalled.reply).toContain(`You asked me to remember ${contact.word}.`);
      expect(recalled.session_id).toBe(sessionIds.get(contact.chatId));
    });
    // Each session is now held by a node still running, which names itself its node at once (the
    // others see it at their next look at the leases). A released lease names no owner, so the
    // taker logs the stopped node as `from` only when it knew it: not asserted here.
    const leases = new pg.Client({ connectionString: databaseUrl });
    await leases.connect();
    try {
      for (const contact of held) {
        const name = before.get(contact.chatId)!.session_name;
        const { rows: owners } = await leases.query<{ owner_node: string | null }>(
          "SELECT owner_node FROM chat_leases WHERE session_name = $1",
          [name],
        );
        const taker = others.find((node) => node.id === owners[0]?.owner_node);
        expect(taker, `${name}: held by ${owners[0]?.owner_node ?? "nobody"}`).toBeDefined();
        const view = sessionsByChat(await taker!.sessions()).get(contact.chatId)!;
        expect(view.node, contact.key).toBe(taker!.id);
      }
    } finally {
      await leases.end();
    }
    const takeOvers = (await cluster.logLines("session-take-over")).filter(
      (line) => line.from === stopped.id && Date.parse(line.time) >= stoppedAt,
    );
    const handBackMs = takeOvers.map((line) => Date.parse(line.time) - stoppedAt);
    console.log(
      `SIGTERM of ${stopped.id} (${held.length} sessions): ${takeOvers.length} take-overs logged ` +
        `from it, median ${median(handBackMs)} ms after the stop (lease ${LEASE_SECONDS} s)`,
    );
  }, 300_000);
});
