/**
 * The chat router of a cluster's node (`src/cluster/chat-router.ts`) over the in-memory chat
 * ownership, shared by the "nodes" of a test as one database would be, on a manual clock. The
 * rest is faked: the registry rows every node reads (a map), each node's registry in memory, the
 * journal's open rows and replies, and what the router asks of the daemon (wake-ups, replays,
 * answers to waiting requests, a relinquished session), which is recorded.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { ChatRouter, type ChatRouterDeps } from "../../../src/cluster/chat-router.js";
import type { Delivery } from "../../../src/core/session-manager-types.js";
import type { Lease, NodeReport } from "../../../src/store/chat-ownership.js";
import type { InboundAnswer, InboundRow, InboundStatus } from "../../../src/store/journal.js";
import {
  createMemoryChatOwnership,
  createMemoryOwnershipRows,
  type MemoryOwnershipRows,
} from "../../../src/store/memory-chat-ownership.js";
import { MemoryRegistry } from "../../../src/store/memory-registry.js";
import type { RegistryEntry } from "../../../src/store/registry.js";
import {
  asAgentSessionId,
  asChatId,
  asSessionName,
  type ChatId,
  type SessionName,
} from "../../../src/utils/ids.js";
import { ManualClock } from "../../support/manual-clock.js";
import { createMemoryLogger, type LogRecord } from "../../support/memory-logger.js";

const LEASE_MS = 15_000;
const HEARTBEAT_MS = 15_000;
const ALICE_CHAT = asChatId("+15550000001");
const BOB_CHAT = asChatId("+15550000002");
const ALICE = asSessionName("alice");
const BOB = asSessionName("bob");

/** What every node of a test shares: the database, as far as the router reads it. */
interface Shared {
  clock: ManualClock;
  ownershipRows: MemoryOwnershipRows;
  /** The registry rows, by chat. */
  registryRows: Map<ChatId, RegistryEntry>;
  /** The journal's inbound rows, and the reply of each answered one. */
  inbound: InboundRow[];
  replies: Map<number, string[]>;
}

function entry(name: string, overrides: Partial<RegistryEntry> = {}): RegistryEntry {
  return {
    session_name: asSessionName(name),
    contact_name: name,
    tier: "favorite",
    session_id: asAgentSessionId(`${name}-session`),
    created_at: "2026-01-01T00:00:00.000Z",
    last_message_time: null,
    chat_kind: "individual",
    channel: "http",
    previous_session_ids: [],
    turns: 0,
    errors: 0,
    restarts: 0,
    ...overrides,
  };
}

function delivery(chatId: ChatId, contactName: string | null = null): Delivery {
  return {
    chatId,
    text: "hello",
    contactName,
    tier: "favorite",
    chatKind: "individual",
    channel: "http",
  };
}

function report(nodeId: string, overrides: Partial<NodeReport> = {}): NodeReport {
  return {
    nodeId,
    address: `http://${nodeId}:7878`,
    startedAt: 0,
    liveSlotsFree: 4,
    liveSlotsTotal: 8,
    channels: ["http"],
    state: "serving",
    ...overrides,
  };
}

/** One node: its router, and what the router asked of the daemon. */
interface TestNode {
  nodeId: string;
  router: ChatRouter;
  registry: MemoryRegistry;
  /** The leases its keeper holds. */
  held: Map<SessionName, Lease>;
  wakes: Parameters<ChatRouterDeps["wake"]>[0][];
  /** The journal ids each replay handed over (the open rows its filter picked). */
  replays: number[][];
  /** What `answerWaiting` was given. */
  answered: { chatId: ChatId; answer: InboundAnswer; agentSessionId: string }[];
  relinquished: ChatId[];
  /** The rows being answered here (handed over by a replay). */
  inflight: Set<number>;
  /** The journal rows requests on this node wait for. */
  waiting: Set<number>;
  records: LogRecord[];
  stopping: boolean;
  registerCalls: number;
}

function newShared(): Shared {
  return {
    clock: new ManualClock(),
    ownershipRows: createMemoryOwnershipRows(),
    registryRows: new Map(),
    inbound: [],
    replies: new Map(),
  };
}

function startNode(shared: Shared, nodeId: string, extra: Partial<ChatRouterDeps> = {}): TestNode {
  const registry = new MemoryRegistry();
  const logger = createMemoryLogger();
  const node: TestNode = {
    nodeId,
    router: undefined!,
    registry,
    held: new Map(),
    wakes: [],
    replays: [],
    answered: [],
    relinquished: [],
    inflight: new Set(),
    waiting: new Set(),
    records: logger.records,
    stopping: false,
    registerCalls: 0,
  };
  const reload = (chatId: ChatId) => {
    registry.unload(chatId);
    const stored = shared.registryRows.get(chatId);
    if (stored) registry.load(chatId, { ...stored });
    return Promise.resolve(registry.get(chatId));
  };
  const open = () =>
    shared.inbound.filter((row) => row.status === "received" || row.status === "delivered");
  node.router = new ChatRouter({
    nodeId,
    leaseMs: LEASE_MS,
    ownership: createMemoryChatOwnership({ rows: shared.ownershipRows, clock: shared.clock }),
    held: {
      hold: (lease) => node.held.set(lease.sessionName, lease),
      holds: (sessionName) => node.held.has(sessionName),
    },
    registry: {
      get: (chatId) => registry.get(chatId),
      chatsNamed: (name) => registry.chatsNamed(name),
      isNameTaken: (name) => registry.isNameTaken(name),
      reload,
      reloadChangedSince: () => Promise.resolve(0),
      async reloadNamed(name) {
        for (const [chatId, stored] of shared.registryRows) {
          if (stored.session_name === name) await reload(chatId);
        }
        return registry.chatsNamed(name);
      },
      async registerExclusive(chatId, make) {
        node.registerCalls += 1;
        const existing = await reload(chatId);
        if (existing) return existing;
        const taken = (name: string) =>
          registry.isNameTaken(name) ||
          [...shared.registryRows.values()].some((row) => row.session_name === name);
        const made = make(taken);
        shared.registryRows.set(chatId, made);
        registry.set(chatId, made);
        return made;
      },
    },
    journal: {
      pendingInbound: () => Promise.resolve(open()),
      answersTo: (ids) =>
        Promise.resolve(
          shared.inbound
            .filter((row) => ids.includes(row.id))
            .map((row) => ({
              id: row.id,
              chatId: row.chatId,
              status: row.status,
              reply: row.status === "answered" ? (shared.replies.get(row.id) ?? []) : [],
            })),
        ),
    },
    clock: shared.clock,
    logger,
    chatKeyOf: (chatId) => chatId,
    nameInUse: () => false,
    wake: (wakeUp) => {
      node.wakes.push(wakeUp);
      return Promise.resolve();
    },
    // As the inbox's replay: a row being answered here is not handed over again.
    replay: (include) => {
      const picked = open()
        .filter((row) => !node.inflight.has(row.id) && include(row))
        .map((row) => row.id);
      for (const id of picked) node.inflight.add(id);
      node.replays.push(picked);
      return Promise.resolve(picked.length);
    },
    waitingFor: () => [...node.waiting],
    sendUnsent: () => Promise.resolve(),
    answerWaiting: (chatId, answer, agentSessionId) =>
      node.answered.push({ chatId, answer, agentSessionId }),
    relinquish: (chatId) => {
      node.relinquished.push(chatId);
      return Promise.resolve();
    },
    stopping: () => node.stopping,
    ...extra,
  });
  return node;
}

/** Writes a node's row: its heartbeat holds for `HEARTBEAT_MS`. */
async function heartbeat(shared: Shared, nodeId: string, overrides: Partial<NodeReport> = {}) {
  await createMemoryChatOwnership({ rows: shared.ownershipRows, clock: shared.clock }).heartbeat(
    report(nodeId, overrides),
    HEARTBEAT_MS,
  );
}

async function leaseFor(shared: Shared, sessionName: SessionName, owner: string): Promise<Lease> {
  const result = await createMemoryChatOwnership({
    rows: shared.ownershipRows,
    clock: shared.clock,
  }).acquire(sessionName, owner, LEASE_MS);
  if (!result.acquired) throw new Error(`${owner} did not get ${sessionName}`);
  return result.lease;
}

async function leaseOf(shared: Shared, sessionName: SessionName): Promise<Lease | undefined> {
  return createMemoryChatOwnership({ rows: shared.ownershipRows, clock: shared.clock }).leaseOf(
    sessionName,
  );
}

let nextId = 1;
function recordInbound(
  shared: Shared,
  chatId: string,
  status: InboundStatus = "received",
): InboundRow {
  const now = new Date(shared.clock.now());
  const row: InboundRow = {
    id: nextId++,
    uuid: `uuid-${nextId}`,
    channel: "http",
    chatId,
    text: "hello",
    receivedAt: now,
    status,
    attempts: 0,
    createdAt: now,
    updatedAt: now,
  };
  shared.inbound.push(row);
  return row;
}

function register(shared: Shared, chatId: ChatId, name: string, ...nodes: TestNode[]): void {
  const stored = entry(name);
  shared.registryRows.set(chatId, stored);
  for (const node of nodes) node.registry.load(chatId, { ...stored });
}

const messagesOf = (node: TestNode) => node.records.map((record) => record.message);

describe("ChatRouter.place", () => {
  let shared: Shared;
  let a: TestNode;
  let b: TestNode;
  beforeEach(async () => {
    shared = newShared();
    a = startNode(shared, "node-a");
    b = startNode(shared, "node-b");
    await heartbeat(shared, "node-a", { liveSlotsFree: 4 });
    await heartbeat(shared, "node-b", { liveSlotsFree: 2 });
  });

  it("answers here, without asking the database, a session whose lease this node holds", async () => {
    register(shared, ALICE_CHAT, "alice", a);
    const lease = await leaseFor(shared, ALICE, "node-a");
    a.held.set(ALICE, lease);
    // Were it asked, the database would say another node took it: the keeper's word counts.
    shared.clock.advance(LEASE_MS);
    await leaseFor(shared, ALICE, "node-b");
    expect(await a.router.place(delivery(ALICE_CHAT))).toBeUndefined();
    expect(a.replays).toEqual([]);
  });

  it("takes a free lease here when placement picks this node, and hands over the session's open rows", async () => {
    register(shared, ALICE_CHAT, "alice", a);
    register(shared, BOB_CHAT, "bob", a);
    const aliceRow = recordInbound(shared, ALICE_CHAT);
    recordInbound(shared, BOB_CHAT);
    expect(await a.router.place(delivery(ALICE_CHAT))).toBeUndefined();
    const lease = await leaseOf(shared, ALICE);
    expect(lease).toMatchObject({ owner: "node-a", epoch: 1 });
    expect(a.held.get(ALICE)).toEqual(lease);
    expect(a.router.ownerOf(ALICE)).toBe("node-a");
    expect(a.replays).toEqual([[aliceRow.id]]);
    // Nobody held it before: no take-over.
    expect(messagesOf(a)).not.toContain("session-take-over");
  });

  it("sends a free session to the node with the most free slots, and takes no lease", async () => {
    register(shared, ALICE_CHAT, "alice", b);
    expect(await b.router.place(delivery(ALICE_CHAT))).toEqual({
      node: "node-a",
      sessionName: ALICE,
    });
    expect(await leaseOf(shared, ALICE)).toBeUndefined();
    expect(b.held.size).toBe(0);
    expect(b.replays).toEqual([]);
  });

  it("sends a session to the live node holding its lease, whatever placement says", async () => {
    register(shared, ALICE_CHAT, "alice", a);
    await leaseFor(shared, ALICE, "node-b");
    shared.clock.advance(LEASE_MS - 1);
    expect(await a.router.place(delivery(ALICE_CHAT))).toEqual({
      node: "node-b",
      sessionName: ALICE,
    });
    // The views name it while its node is live, as the sweep's node listing last saw it.
    await heartbeat(shared, "node-b", { liveSlotsFree: 2 });
    await a.router.sweep();
    expect(a.router.ownerOf(ALICE)).toBe("node-b");
    expect((await leaseOf(shared, ALICE))?.owner).toBe("node-b");
    await heartbeat(shared, "node-b", { liveSlotsFree: 2, state: "gone" });
    shared.clock.advance(500); // past the router's reuse of a node listing
    await a.router.sweep();
    expect(a.router.ownerOf(ALICE)).toBeNull();
  });

  it("takes an expired lease over when placement picks this node, logging session-take-over with from", async () => {
    register(shared, ALICE_CHAT, "alice", a);
    const before = await leaseFor(shared, ALICE, "node-c");
    shared.clock.advance(LEASE_MS);
    await heartbeat(shared, "node-a", { liveSlotsFree: 4 });
    await heartbeat(shared, "node-b", { liveSlotsFree: 2 });
    expect(await a.router.place(delivery(ALICE_CHAT))).toBeUndefined();
    expect(await leaseOf(shared, ALICE)).toMatchObject({
      owner: "node-a",
      epoch: before.epoch + 1,
    });
    const takeOver = a.records.find((record) => record.message === "session-take-over");
    expect(takeOver?.fields).toMatchObject({
      sessionName: ALICE,
      from: "node-c",
      epoch: before.epoch + 1,
    });
  });

  it("takes back this node's own lease from before a restart, though placement picks another node", async () => {
    register(shared, ALICE_CHAT, "alice", b);
    const before = await leaseFor(shared, ALICE, "node-b");
    // node-b restarted: its keeper holds nothing, and node-a has more free slots.
    expect(await b.router.place(delivery(ALICE_CHAT))).toBeUndefined();
    expect(await leaseOf(shared, ALICE)).toMatchObject({
      owner: "node-b",
      epoch: before.epoch + 1,
    });
    expect(messagesOf(b)).not.toContain("session-take-over");
  });

  it("claims a session once when two messages of it are placed at once", async () => {
    register(shared, ALICE_CHAT, "alice", a);
    const [first, second] = await Promise.all([
      a.router.place(delivery(ALICE_CHAT)),
      a.router.place(delivery(ALICE_CHAT)),
    ]);
    expect([first, second]).toEqual([undefined, undefined]);
    // One tenure: a second acquire would have given epoch 2, fencing out the first.
    expect(await leaseOf(shared, ALICE)).toMatchObject({ owner: "node-a", epoch: 1 });
    expect(a.replays).toHaveLength(1);
  });

  it("sends the message to the node that took the lease first when both nodes claim it", async () => {
    // node-a read the lease as free (the read below), and node-b took it before node-a's acquire.
    const ownership = createMemoryChatOwnership({
      rows: shared.ownershipRows,
      clock: shared.clock,
    });
    const racing = startNode(shared, "node-a", {
      ownership: { ...ownership, leaseOf: () => Promise.resolve(undefined) },
    });
    register(shared, ALICE_CHAT, "alice", racing);
    await leaseFor(shared, ALICE, "node-b");
    expect(await racing.router.place(delivery(ALICE_CHAT))).toEqual({
      node: "node-b",
      sessionName: ALICE,
    });
    expect(racing.held.size).toBe(0);
    expect(racing.replays).toEqual([]);
    expect(racing.router.ownerOf(ALICE)).toBe("node-b");
  });

  it("registers a chat no node has seen, under a name no node has given, before placing it", async () => {
    // Another node registered someone called Alice already.
    shared.registryRows.set(asChatId("+15550000099"), entry("alice"));
    expect(await b.router.place(delivery(ALICE_CHAT, "Alice"))).toEqual({
      node: "node-a",
      sessionName: asSessionName("alice-2"),
    });
    expect(shared.registryRows.get(ALICE_CHAT)).toMatchObject({
      session_name: "alice-2",
      // A session of its own starts afresh on the node that runs it.
      session_id: null,
    });
  });

  it("reads a chat another node registered from the rows, and registers nothing", async () => {
    register(shared, ALICE_CHAT, "alice");
    expect(await b.router.place(delivery(ALICE_CHAT, "Alice"))).toEqual({
      node: "node-a",
      sessionName: ALICE,
    });
    expect(b.registerCalls).toBe(0);
    expect(b.registry.get(ALICE_CHAT)?.session_name).toBe("alice");
  });

  it("joins a person's second handle to the session of the first, with its session id", async () => {
    const secondHandle = asChatId("alice@example.com");
    const c = startNode(shared, "node-c", {
      personOf: (chatId) =>
        chatId === ALICE_CHAT || chatId === secondHandle ? [ALICE_CHAT, secondHandle] : undefined,
    });
    register(shared, ALICE_CHAT, "alice");
    await c.router.place(delivery(secondHandle, "Alice"));
    expect(shared.registryRows.get(secondHandle)).toMatchObject({
      session_name: "alice",
      session_id: "alice-session",
    });
  });
});

describe("ChatRouter.sweep", () => {
  let shared: Shared;
  let a: TestNode;
  let b: TestNode;
  beforeEach(() => {
    shared = newShared();
    a = startNode(shared, "node-a");
    b = startNode(shared, "node-b");
  });

  /** node-c held alice and bob and died: its leases run out; a and b live on. */
  async function deadNodeC(): Promise<void> {
    register(shared, ALICE_CHAT, "alice", a, b);
    register(shared, BOB_CHAT, "bob", a, b);
    await leaseFor(shared, ALICE, "node-c");
    await leaseFor(shared, BOB, "node-c");
    shared.clock.advance(LEASE_MS);
    await heartbeat(shared, "node-a", { liveSlotsFree: 4 });
    await heartbeat(shared, "node-b", { liveSlotsFree: 2 });
  }

  it("takes a dead node's expired leases over only on the node placement picks", async () => {
    await deadNodeC();
    await b.router.sweep();
    expect((await leaseOf(shared, ALICE))?.owner).toBe("node-c");
    expect(b.held.size).toBe(0);
    await a.router.sweep();
    expect(await leaseOf(shared, ALICE)).toMatchObject({ owner: "node-a", epoch: 2 });
    expect(await leaseOf(shared, BOB)).toMatchObject({ owner: "node-a", epoch: 2 });
    expect([...a.held.keys()].sort()).toEqual([ALICE, BOB]);
    expect(
      a.records
        .filter((record) => record.message === "session-take-over")
        .map((record) => record.fields.from),
    ).toEqual(["node-c", "node-c"]);
  });

  it("hands over only the open rows of the sessions it takes", async () => {
    await deadNodeC();
    const carolChat = asChatId("+15550000003");
    register(shared, carolChat, "carol", a, b);
    // carol's session runs on node-b, alive.
    b.held.set(asSessionName("carol"), await leaseFor(shared, asSessionName("carol"), "node-b"));
    // Rows old enough for the sweep: past the routing grace.
    const aliceRows = [recordInbound(shared, ALICE_CHAT), recordInbound(shared, ALICE_CHAT)];
    const bobRow = recordInbound(shared, BOB_CHAT);
    recordInbound(shared, carolChat);
    const answered = recordInbound(shared, ALICE_CHAT, "answered");
    shared.clock.advance(1_000);
    await a.router.sweep();
    const handed = a.replays.flat();
    expect(handed.sort()).toEqual([...aliceRows.map((row) => row.id), bobRow.id].sort());
    // Each session's rows in a replay of their own.
    expect(a.replays).toContainEqual(aliceRows.map((row) => row.id));
    expect(a.replays).toContainEqual([bobRow.id]);
    expect(handed).not.toContain(answered.id);
  });

  it("leaves rows younger than a second to the node that accepted them", async () => {
    register(shared, ALICE_CHAT, "alice", a);
    await heartbeat(shared, "node-a", { liveSlotsFree: 4 });
    const row = recordInbound(shared, ALICE_CHAT);
    shared.clock.advance(999);
    await a.router.sweep();
    expect(await leaseOf(shared, ALICE)).toBeUndefined();
    expect(a.replays).toEqual([]);
    shared.clock.advance(1);
    await heartbeat(shared, "node-a", { liveSlotsFree: 4 });
    await a.router.sweep();
    // Nobody answers it: taken here (placement picks node-a), and handed over.
    expect((await leaseOf(shared, ALICE))?.owner).toBe("node-a");
    expect(a.replays).toEqual([[row.id]]);
  });

  it("wakes the node placement picks for an orphaned row of a session nobody holds", async () => {
    register(shared, ALICE_CHAT, "alice", b);
    await heartbeat(shared, "node-a", { liveSlotsFree: 4 });
    await heartbeat(shared, "node-b", { liveSlotsFree: 2 });
    recordInbound(shared, ALICE_CHAT);
    shared.clock.advance(1_000);
    await b.router.sweep();
    expect(b.wakes).toEqual([{ kind: "inbox", sessionName: ALICE, owner: "node-a" }]);
    expect(await leaseOf(shared, ALICE)).toBeUndefined();
    expect(b.replays).toEqual([]);
  });

  it("hands over the orphaned rows of a session this node holds", async () => {
    register(shared, ALICE_CHAT, "alice", a);
    a.held.set(ALICE, await leaseFor(shared, ALICE, "node-a"));
    const row = recordInbound(shared, ALICE_CHAT, "delivered");
    shared.clock.advance(1_000);
    await a.router.sweep();
    expect(a.replays).toEqual([[row.id]]);
  });

  it("routes again the rows of a chat never registered once they are older than the lease", async () => {
    await heartbeat(shared, "node-a", { liveSlotsFree: 4 });
    register(shared, ALICE_CHAT, "alice", a);
    const stranger = recordInbound(shared, "+15550000077");
    shared.clock.advance(LEASE_MS - 1);
    await heartbeat(shared, "node-a", { liveSlotsFree: 4 });
    await a.router.sweep();
    expect(a.replays).toEqual([]);
    shared.clock.advance(1);
    await a.router.sweep();
    expect(a.replays).toEqual([[stranger.id]]);
  });

  it("takes nothing over while the daemon is stopping", async () => {
    await deadNodeC();
    recordInbound(shared, ALICE_CHAT);
    shared.clock.advance(1_000);
    a.stopping = true;
    await a.router.sweep();
    expect((await leaseOf(shared, ALICE))?.owner).toBe("node-c");
    expect(a.replays).toEqual([]);
  });
});

describe("ChatRouter: replies, wake-ups and a lost lease", () => {
  let shared: Shared;
  let a: TestNode;
  beforeEach(async () => {
    shared = newShared();
    a = startNode(shared, "node-a");
    await heartbeat(shared, "node-a");
  });

  it("answers from the journal only the waiting requests a reply wake-up names", async () => {
    register(shared, ALICE_CHAT, "alice", a);
    const answered = recordInbound(shared, ALICE_CHAT, "answered");
    shared.replies.set(answered.id, ["the reply", "in parts"]);
    const rejected = recordInbound(shared, ALICE_CHAT, "rejected");
    const stillOpen = recordInbound(shared, ALICE_CHAT, "delivered");
    const notWaited = recordInbound(shared, ALICE_CHAT, "answered");
    a.waiting = new Set([answered.id, rejected.id, stillOpen.id]);
    a.router.onWakeUp({
      kind: "reply",
      inboundIds: [answered.id, rejected.id, stillOpen.id, notWaited.id],
    });
    await settled(() => a.answered.length === 2);
    expect(a.answered).toEqual([
      {
        chatId: ALICE_CHAT,
        answer: {
          id: answered.id,
          chatId: ALICE_CHAT,
          status: "answered",
          reply: ["the reply", "in parts"],
        },
        agentSessionId: "alice-session",
      },
      {
        chatId: ALICE_CHAT,
        answer: { id: rejected.id, chatId: ALICE_CHAT, status: "rejected", reply: [] },
        agentSessionId: "alice-session",
      },
    ]);
  });

  it("looks in the journal at every sweep for replies requests here wait for", async () => {
    register(shared, ALICE_CHAT, "alice", a);
    const row = recordInbound(shared, ALICE_CHAT, "delivered");
    a.waiting = new Set([row.id]);
    await a.router.sweep();
    expect(a.answered).toEqual([]);
    row.status = "answered";
    shared.replies.set(row.id, ["late"]);
    await a.router.sweep();
    expect(a.answered.map((each) => each.answer)).toEqual([
      { id: row.id, chatId: ALICE_CHAT, status: "answered", reply: ["late"] },
    ]);
  });

  it("takes a session it is woken for and hands over its rows", async () => {
    register(shared, ALICE_CHAT, "alice", a);
    const row = recordInbound(shared, ALICE_CHAT);
    a.router.onWakeUp({ kind: "inbox", sessionName: ALICE });
    await settled(() => a.replays.length === 1);
    expect(a.replays).toEqual([[row.id]]);
    expect((await leaseOf(shared, ALICE))?.owner).toBe("node-a");
  });

  it("takes no session it is woken for while the daemon is stopping", async () => {
    register(shared, ALICE_CHAT, "alice", a);
    recordInbound(shared, ALICE_CHAT);
    a.stopping = true;
    a.router.onWakeUp({ kind: "inbox", sessionName: ALICE });
    await new Promise((resolve) => setImmediate(resolve));
    expect(await leaseOf(shared, ALICE)).toBeUndefined();
    expect(a.replays).toEqual([]);
  });

  it("tells every node a reply was recorded, by the rows it answers", async () => {
    register(shared, ALICE_CHAT, "alice", a);
    await a.router.replyRecorded(ALICE_CHAT, [3, 4]);
    await a.router.replyRecorded(ALICE_CHAT, []);
    await a.router.replyRecorded(BOB_CHAT, [5]);
    expect(a.wakes).toEqual([{ kind: "reply", sessionName: ALICE, inboundIds: [3, 4] }]);
  });

  it("relinquishes the session's chat when its lease is lost, and keeps its last tenure as the fence", async () => {
    register(shared, ALICE_CHAT, "alice", a);
    expect(a.router.fenceOf(ALICE_CHAT)).toBeUndefined();
    expect(await a.router.place(delivery(ALICE_CHAT))).toBeUndefined();
    const lease = (await leaseOf(shared, ALICE))!;
    expect(a.router.fenceOf(ALICE_CHAT)).toEqual(lease);
    // The keeper finds it taken over.
    a.held.delete(ALICE);
    shared.clock.advance(LEASE_MS);
    await leaseFor(shared, ALICE, "node-b");
    await a.router.lost(lease);
    expect(a.relinquished).toEqual([ALICE_CHAT]);
    expect(messagesOf(a)).toContain("session-relinquish");
    // A late reply is recorded under the old tenure: the journal refuses it.
    expect(a.router.fenceOf(ALICE_CHAT)).toEqual(lease);
    expect(a.router.ownerOf(ALICE)).toBeNull();
  });
});

/** Resolves once `done` holds, checking after each turn of the event loop (no timer). */
async function settled(done: () => boolean): Promise<void> {
  for (let turn = 0; turn < 1_000; turn += 1) {
    if (done()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error("the condition never held");
}
