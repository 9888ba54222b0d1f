/**
 * Which node answers a chat, for a daemon that is a node of a cluster (`docs/cluster.md`). Every
 * node records the messages it accepts in the shared journal; a session runs on the node that
 * holds its lease, and only that node hands the session its messages.
 *
 * - **A message** (`place`): its chat's session name comes from the registry (read again from
 *   the database for a chat this node has not seen; a new chat is registered under a name no
 *   node has given, `RowRegistry.registerExclusive`). A session whose lease this node holds is
 *   answered here. One another live node holds goes there: that node is woken
 *   (`wake`, LISTEN/NOTIFY) and reads it from the journal. A free or expired one goes to the
 *   node with the most free live-session slots (`placement.ts`): this one takes the lease, or
 *   that one is woken and takes it.
 * - **Taking a session** (`claim`): the lease is taken with a new epoch (fencing out the node
 *   before), the registry rows of its chats are read again (their newest session id), and every
 *   message recorded for them and not being answered here is handed over by the inbox's replay
 *   (`unanswered-replay.ts`), which finds in the transcript copy what the node before had
 *   answered or seen.
 * - **The sweep**, every second: takes over the sessions of dead nodes (leases past their
 *   expiry, for the node placement picks), picks up messages no node is answering (a node that
 *   died between accepting a message and waking its owner), and looks in the journal for the
 *   replies requests here wait for, should a wake-up have been lost.
 * - **Replies**: the owner records a reply under its lease (`fenceOf`: a node that lost it records
 *   nothing) and wakes every node (`replyRecorded`); the node holding the waiting request reads
 *   the reply from the journal (`answerWaiting`).
 * - **A lost lease** (`lost`): the session stops here and drops its queue; the new owner answers
 *   those messages from the journal.
 */
import type { Delivery } from "../core/session-manager-types.js";
import { personSessionOf } from "../core/person-sessions.js";
import { newRegistryEntry } from "../core/session-setup.js";
import type { Logger } from "../logging/logger.js";
import type { ChatOwnership, Fence, Lease, NodeId, NodeRow } from "../store/chat-ownership.js";
import type { InboundAnswer, InboundRow, Journal } from "../store/journal.js";
import type { RegistryEntry } from "../store/registry.js";
import type { RowRegistry } from "../store/row-registry.js";
import type { Clock } from "../utils/clock.js";
import { describeError } from "../utils/errors.js";
import type { ChatId, SessionName } from "../utils/ids.js";
import { chooseNodeForNewChat, isLiveNode, nodeForChannel } from "./placement.js";

/** The node's lease keeper, as far as the router takes and gives back leases through it. */
export interface HeldLeases {
  hold(lease: Lease): void;
  holds(sessionName: SessionName): boolean;
}

export interface ChatRouterDeps {
  nodeId: NodeId;
  /** `cluster.leaseSeconds` in ms. */
  leaseMs: number;
  ownership: ChatOwnership;
  held: HeldLeases;
  registry: Pick<
    RowRegistry,
    | "get"
    | "reload"
    | "reloadNamed"
    | "reloadChangedSince"
    | "registerExclusive"
    | "chatsNamed"
    | "isNameTaken"
  >;
  journal: Pick<Journal, "pendingInbound" | "answersTo">;
  clock: Clock;
  logger: Logger;
  /** The chat key a journal row belongs to (`intake.ts` `chatKeyOf`). */
  chatKeyOf(chatId: string): string;
  /** A person's handles, with one session per person (`sessionScope: "person"`). */
  personOf?(chatId: ChatId): readonly ChatId[] | undefined;
  /** Whether a session name is still on this node's disk (a folder, CLI data, an archive). */
  nameInUse(name: string): boolean;
  /** Sends a wake-up: an `inbox` one to `node`, or a `reply` one to every node. */
  wake(
    wakeUp:
      | { kind: "inbox"; sessionName: SessionName; owner: NodeId }
      | { kind: "reply"; sessionName: SessionName; inboundIds: number[] }
      | { kind: "outbox"; node: NodeId; channel: string },
  ): Promise<void>;
  /**
   * The inbox's replay of the journal's open messages that `include` picks; with `awaitClaimed`,
   * resolved once those being handed over already are in their session too.
   */
  replay(
    include: (row: InboundRow) => boolean,
    options?: { awaitClaimed?: boolean },
  ): Promise<number>;
  /** The journal rows requests on this node wait for (the HTTP channel's). */
  waitingFor(): number[];
  /** Hands a reply another node recorded to the request here that waits for it. */
  answerWaiting(chatId: ChatId, answer: InboundAnswer, agentSessionId: string): void;
  /** Sends the reply parts of channels this node has that another node recorded. */
  sendUnsent(options: { channel?: string; olderThanMs?: number }): Promise<void>;
  /** Stops the session of `chatId` here and drops its queue: its lease is lost. */
  relinquish(chatId: ChatId): Promise<void>;
  /** Whether the daemon is stopping: it takes no session then. */
  stopping(): boolean;
}

/** Where a message's session runs, when not here. */
export interface Elsewhere {
  node: NodeId;
  sessionName: SessionName;
}

/** How long a node list read for placement is used again. */
const NODES_FRESH_MS = 500;
/** A message younger than this is left to the node that accepted it (it is routing it now). */
const ROUTING_GRACE_MS = 1_000;
/**
 * How often the sweep reads every lease (for `ownerOf`) and the registry rows other nodes changed
 * (so this node's views list every chat of the cluster).
 */
const OWNERS_REFRESH_MS = 5_000;
/** How far back a registry catch-up looks past the last one: the nodes' clocks may differ. */
const CLOCK_SKEW_MARGIN_MS = 30_000;

export class ChatRouter {
  /** Each session's last tenure here, kept after a loss: a late reply is fenced by it. */
  private readonly tenures = new Map<SessionName, Fence>();
  /** Owners as last read (a lease listing, a placement), for the views. */
  private owners = new Map<SessionName, NodeId>();
  private ownersReadAt = Number.NEGATIVE_INFINITY;
  /** When the registry was last caught up with (it was read whole just before the router). */
  private registryReadAt: number;
  private nodesRead: { at: number; rows: Promise<NodeRow[]> } | undefined;
  /** The live nodes as of the last node listing (the sweep reads one every second). */
  private liveNodes = new Set<NodeId>();
  /** Sessions being claimed here: a second claim joins the first. */
  private readonly claiming = new Map<SessionName, Promise<boolean>>();
  private sweeping: Promise<void> | undefined;
  private readonly logger: Logger;

  constructor(private readonly deps: ChatRouterDeps) {
    this.logger = deps.logger.child({ nodeId: deps.nodeId });
    this.registryReadAt = deps.clock.now();
  }

  /**
   * Where `delivery`'s session runs: undefined when here (this node holds its lease, or just took
   * it), else the node to wake. A new chat is registered first.
   */
  async place(delivery: Delivery, recordId?: number): Promise<Elsewhere | undefined> {
    const entry = await this.entryOf(delivery);
    const sessionName = entry.session_name;
    if (this.heldLease(sessionName)) {
      // Messages of the session taken in before this one on another node (whose wake-up may
      // still be on its way) go to the session first: a chat's messages keep their order.
      if (recordId !== undefined) await this.replaySession(sessionName, recordId);
      return undefined;
    }
    const lease = await this.deps.ownership.leaseOf(sessionName);
    const now = this.deps.clock.now();
    if (lease && lease.owner !== this.deps.nodeId && lease.expiresAt > now) {
      // Held by another node: even a dead one's, until it runs out and the sweep takes it over.
      this.owners.set(sessionName, lease.owner);
      return { node: lease.owner, sessionName };
    }
    // A session no node holds is placed on the nodes as they are now, not as last listed: a
    // node that just joined is there to take it.
    const target = chooseNodeForNewChat(await this.nodes({ fresh: true }), sessionName, now);
    // This node's own lease from before a restart is taken back here, whatever placement says.
    if (target && target.nodeId !== this.deps.nodeId && lease?.owner !== this.deps.nodeId) {
      this.owners.set(sessionName, target.nodeId); // it takes the lease once woken
      return { node: target.nodeId, sessionName };
    }
    if (await this.claim(sessionName, lease)) return undefined;
    const holder = this.owners.get(sessionName);
    return { node: holder ?? target?.nodeId ?? this.deps.nodeId, sessionName };
  }

  /** Tells `node` that messages of `sessionName` wait in the journal. */
  async wake(elsewhere: Elsewhere): Promise<void> {
    await this.deps.wake({
      kind: "inbox",
      sessionName: elsewhere.sessionName,
      owner: elsewhere.node,
    });
  }

  /** A wake-up for this node: messages to pick up, or a reply a request here may wait for. */
  onWakeUp(
    wakeUp:
      | { kind: "inbox"; sessionName: SessionName }
      | { kind: "reply"; inboundIds: number[] }
      | { kind: "outbox"; channel: string },
  ): void {
    if (wakeUp.kind === "reply") {
      void this.answerWaiting(wakeUp.inboundIds);
      return;
    }
    if (wakeUp.kind === "outbox") {
      void this.deps
        .sendUnsent({ channel: wakeUp.channel })
        .catch((error: unknown) =>
          this.logger.warn("reply-send-unsent-fail", { cause: describeError(error) }),
        );
      return;
    }
    if (this.deps.stopping()) return;
    void this.pickUp(wakeUp.sessionName);
  }

  /** The fence a reply of `chatId`'s session is recorded under: this node's last tenure. */
  fenceOf(chatId: ChatId): Fence | undefined {
    const name = this.deps.registry.get(chatId)?.session_name;
    return name === undefined ? undefined : this.tenures.get(name);
  }

  /**
   * Reply parts on `channel`, which this node does not have, are recorded: the live node that has
   * it sends them. None has it now: they wait in the journal for one that starts with it.
   */
  async handOff(channel: string): Promise<void> {
    const node = nodeForChannel(await this.nodes(), channel, undefined, this.deps.clock.now());
    if (node === undefined) {
      this.logger.warn("reply-channel-missing", { channel });
      return;
    }
    await this.deps
      .wake({ kind: "outbox", node: node.nodeId, channel })
      .catch((error: unknown) =>
        this.logger.warn("reply-wake-up-fail", { channel, cause: describeError(error) }),
      );
  }

  /** A reply is recorded: every node looks whether a request of its own waits for it. */
  async replyRecorded(chatId: ChatId, inboundIds: readonly number[]): Promise<void> {
    const sessionName = this.deps.registry.get(chatId)?.session_name;
    if (sessionName === undefined || inboundIds.length === 0) return;
    await this.deps
      .wake({ kind: "reply", sessionName, inboundIds: [...inboundIds] })
      .catch((error: unknown) =>
        this.logger.warn("reply-wake-up-fail", { chatId, cause: describeError(error) }),
      );
  }

  /** The node that owns a session, as this node last saw it; null when none does. */
  ownerOf(sessionName: SessionName): NodeId | null {
    if (this.heldLease(sessionName)) return this.deps.nodeId;
    const owner = this.owners.get(sessionName);
    // A node that left or stopped beating holds nothing any more, whatever the last listing said.
    return owner !== undefined && this.liveNodes.has(owner) ? owner : null;
  }

  /** The keeper lost a lease: the session stops here; its new owner answers its messages. */
  async lost(lease: Lease): Promise<void> {
    this.owners.delete(lease.sessionName);
    const chats = this.deps.registry.chatsNamed(lease.sessionName);
    this.logger.warn("session-relinquish", { sessionName: lease.sessionName, epoch: lease.epoch });
    if (chats[0] !== undefined) await this.deps.relinquish(chats[0]);
  }

  /**
   * One round: takes over dead nodes' sessions, picks up messages nobody answers, and answers
   * waiting requests from the journal. Rounds do not overlap; never rejects.
   */
  sweep(): Promise<void> {
    this.sweeping ??= this.sweepOnce()
      .catch((error: unknown) =>
        this.logger.warn("cluster-sweep-fail", { cause: describeError(error) }),
      )
      .finally(() => {
        this.sweeping = undefined;
      });
    return this.sweeping;
  }

  private async sweepOnce(): Promise<void> {
    const { deps } = this;
    await this.nodes(); // fresh for `ownerOf`
    if (!deps.stopping()) {
      await this.takeOverExpired();
      await this.pickUpOrphans();
    }
    await this.answerWaiting(deps.waitingFor());
    const now = deps.clock.now();
    if (now - this.ownersReadAt >= OWNERS_REFRESH_MS) {
      const leases = await deps.ownership.listLeases();
      this.owners = new Map(leases.map((lease) => [lease.sessionName, lease.owner]));
      await deps.registry.reloadChangedSince(this.registryReadAt - CLOCK_SKEW_MARGIN_MS);
      // Parts of this node's channels whose wake-up was lost.
      await deps.sendUnsent({ olderThanMs: OWNERS_REFRESH_MS });
      this.ownersReadAt = now;
      this.registryReadAt = now;
    }
  }

  /** Sessions whose owner stopped renewing: the node placement picks takes each over. */
  private async takeOverExpired(): Promise<void> {
    const expired = await this.deps.ownership.expiredLeases(100);
    if (expired.length === 0) return;
    const nodes = await this.nodes();
    const now = this.deps.clock.now();
    for (const lease of expired) {
      if (this.deps.stopping()) return;
      const target = chooseNodeForNewChat(nodes, lease.sessionName, now);
      if (target?.nodeId !== this.deps.nodeId && lease.owner !== this.deps.nodeId) continue;
      await this.claim(lease.sessionName, lease);
    }
  }

  /**
   * Open messages that no node is answering: those of sessions this node holds but was not
   * woken for, of sessions no live node holds (taken here when placement picks this node, else
   * that node is woken), and of chats never registered whose accepting node died (routed again).
   */
  private async pickUpOrphans(): Promise<void> {
    const { deps } = this;
    const now = deps.clock.now();
    const pending = (await deps.journal.pendingInbound()).filter(
      (row) => now - row.createdAt.getTime() >= ROUTING_GRACE_MS,
    );
    const sessions = new Set<SessionName>();
    const unregistered = new Set<number>();
    for (const row of pending) {
      const chatId = deps.chatKeyOf(row.chatId) as ChatId;
      const entry = deps.registry.get(chatId) ?? (await deps.registry.reload(chatId));
      if (entry) sessions.add(entry.session_name);
      else if (now - row.createdAt.getTime() >= deps.leaseMs) unregistered.add(row.id);
    }
    for (const sessionName of sessions) {
      if (deps.stopping()) return;
      if (this.heldLease(sessionName)) {
        await this.replaySession(sessionName);
        continue;
      }
      const lease = await deps.ownership.leaseOf(sessionName);
      if (lease && lease.expiresAt > now) continue; // its owner's, live or not yet expired
      const target = chooseNodeForNewChat(await this.nodes(), sessionName, now);
      if (target && target.nodeId !== deps.nodeId)
        await this.wake({ node: target.nodeId, sessionName });
      else await this.claim(sessionName, lease);
    }
    // Handed over from the start: `place` registers the chat and sends it where it belongs.
    if (unregistered.size > 0) await deps.replay((row) => unregistered.has(row.id));
  }

  /** Woken for a session: take it when free, then hand over what waits for it. */
  private async pickUp(sessionName: SessionName): Promise<void> {
    try {
      if (this.heldLease(sessionName)) await this.replaySession(sessionName);
      else await this.claim(sessionName, await this.deps.ownership.leaseOf(sessionName));
    } catch (error) {
      this.logger.warn("session-pick-up-fail", { sessionName, cause: describeError(error) });
    }
  }

  /**
   * Takes the session's lease (free, released, expired, or this node's from before) and hands
   * over every open message of its chats; false when another node holds it.
   */
  private claim(sessionName: SessionName, before: Lease | undefined): Promise<boolean> {
    const running = this.claiming.get(sessionName);
    if (running) return running;
    const claim = this.claimNow(sessionName, before).finally(() =>
      this.claiming.delete(sessionName),
    );
    this.claiming.set(sessionName, claim);
    return claim;
  }

  private async claimNow(sessionName: SessionName, before: Lease | undefined): Promise<boolean> {
    const { deps } = this;
    if (this.heldLease(sessionName)) return true;
    const result = await deps.ownership.acquire(sessionName, deps.nodeId, deps.leaseMs);
    if (!result.acquired) {
      this.owners.set(sessionName, result.heldBy.owner);
      return false;
    }
    const { lease } = result;
    // A released lease (its node left gracefully) names no owner: the last one seen here does.
    const from = before?.owner || this.owners.get(sessionName);
    deps.held.hold(lease);
    this.tenures.set(sessionName, lease);
    this.owners.set(sessionName, deps.nodeId);
    if (from && from !== deps.nodeId) {
      this.logger.info("session-take-over", { sessionName, from, epoch: lease.epoch });
    } else {
      this.logger.debug("lease-acquire", { sessionName, epoch: lease.epoch });
    }
    await this.replaySession(sessionName);
    return true;
  }

  /**
   * Every open message of the session's chats that is not being answered here (recorded before
   * journal row `before`, when given), handed over.
   */
  private async replaySession(sessionName: SessionName, before?: number): Promise<void> {
    const chats =
      before === undefined
        ? new Set<string>(await this.deps.registry.reloadNamed(sessionName))
        : new Set<string>(this.deps.registry.chatsNamed(sessionName));
    if (chats.size === 0) return;
    await this.deps.replay(
      (row) =>
        (before === undefined || row.id < before) && chats.has(this.deps.chatKeyOf(row.chatId)),
      { awaitClaimed: before !== undefined },
    );
  }

  /** Replies recorded elsewhere for requests waiting here, from the journal. */
  private async answerWaiting(inboundIds: readonly number[]): Promise<void> {
    const waiting = new Set(this.deps.waitingFor());
    const ids = inboundIds.filter((id) => waiting.has(id));
    if (ids.length === 0) return;
    let answers: InboundAnswer[];
    try {
      answers = await this.deps.journal.answersTo(ids);
    } catch (error) {
      this.logger.warn("reply-read-fail", { cause: describeError(error) });
      return;
    }
    for (const answer of answers) {
      if (answer.status !== "answered" && answer.status !== "rejected") continue;
      const chatId = this.deps.chatKeyOf(answer.chatId) as ChatId;
      const entry = await this.deps.registry
        .reload(chatId)
        .catch(() => this.deps.registry.get(chatId));
      this.deps.answerWaiting(chatId, answer, entry?.session_id ?? "");
    }
  }

  /** The chat's registry entry, read again from the database when unknown here; new: made. */
  private async entryOf(delivery: Delivery): Promise<RegistryEntry> {
    const { registry } = this.deps;
    const known = registry.get(delivery.chatId);
    if (known) return known;
    const person = this.deps.personOf?.(delivery.chatId) ?? [];
    for (const chatId of new Set([delivery.chatId, ...person])) await registry.reload(chatId);
    const reloaded = registry.get(delivery.chatId);
    if (reloaded) return reloaded;
    return registry.registerExclusive(delivery.chatId, (isTaken) => {
      const target =
        person.length > 0
          ? personSessionOf(person, (id) => registry.get(id), delivery.chatId)
          : undefined;
      const entry = newRegistryEntry(
        delivery,
        this.deps.clock.now(),
        (name) => isTaken(name) || this.deps.nameInUse(name),
        target?.entry,
      );
      // A session of its own starts afresh on its node (the manager gives it its id there).
      return target ? entry : { ...entry, session_id: null };
    });
  }

  private heldLease(sessionName: SessionName): boolean {
    return this.deps.held.holds(sessionName);
  }

  private nodes(options: { fresh?: boolean } = {}): Promise<NodeRow[]> {
    const now = this.deps.clock.now();
    if (options.fresh || !this.nodesRead || now - this.nodesRead.at >= NODES_FRESH_MS) {
      const rows = this.deps.ownership.listNodes();
      rows.then(
        (nodes) => {
          this.liveNodes = new Set(
            nodes.filter((node) => isLiveNode(node, now)).map((node) => node.nodeId),
          );
        },
        () => {
          this.nodesRead = undefined;
        },
      );
      this.nodesRead = { at: now, rows };
    }
    return this.nodesRead.rows;
  }
}
