/**
 * Where a chat goes in a cluster, as pure functions over the nodes' rows
 * (`../store/chat-ownership.ts`); the caller reads the rows and the clock.
 *
 * - A node is live while its heartbeat holds and it has not left (`gone`).
 * - A new chat goes to the live `serving` node with the most free live-session slots (a
 *   `draining` node keeps its chats but takes no new ones). Nodes with equally many free slots
 *   are picked among by a hash of the session name, so a burst of new chats between two
 *   heartbeats spreads over them rather than piling onto the first by name; the same session
 *   asks for the same node. With every slot taken everywhere, the most free is still the
 *   answer: the node stops its least recently used idle session to make room, as one daemon does.
 * - A reply leaves through a live node that has its channel (`imessage` runs on one Mac).
 */
import { createHash } from "node:crypto";
import type { NodeRow } from "../store/chat-ownership.js";
import type { SessionName } from "../utils/ids.js";

/** Whether the node's heartbeat holds at `now` and it has not left. */
export function isLiveNode(node: NodeRow, now: number): boolean {
  return node.state !== "gone" && node.heartbeatExpiresAt > now;
}

/** The node a new chat's session should start on; undefined when no node is serving. */
export function chooseNodeForNewChat(
  nodes: readonly NodeRow[],
  sessionName: SessionName,
  now: number,
): NodeRow | undefined {
  const serving = nodes.filter((node) => node.state === "serving" && isLiveNode(node, now));
  if (serving.length === 0) return undefined;
  const most = Math.max(...serving.map((node) => node.liveSlotsFree));
  const best = serving
    .filter((node) => node.liveSlotsFree === most)
    .sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  return best[spreadIndex(sessionName, best.length)];
}

/**
 * The live node a reply on `channel` should leave through: the owner when it has the channel,
 * else the first live node by id that has it; undefined when none has it.
 */
export function nodeForChannel(
  nodes: readonly NodeRow[],
  channel: string,
  owner: string | undefined,
  now: number,
): NodeRow | undefined {
  const able = nodes
    .filter((node) => isLiveNode(node, now) && node.channels.includes(channel))
    .sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  return able.find((node) => node.nodeId === owner) ?? able[0];
}

/** A stable index in `[0, count)` for the session name. */
function spreadIndex(sessionName: SessionName, count: number): number {
  if (count <= 1) return 0;
  return createHash("sha256").update(sessionName).digest().readUInt32BE(0) % count;
}
