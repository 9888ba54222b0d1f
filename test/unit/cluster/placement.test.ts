/** Where a chat goes in a cluster: pure functions over the nodes' rows. */
import { describe, expect, it } from "vitest";
import {
  chooseNodeForNewChat,
  isLiveNode,
  nodeForChannel,
} from "../../../src/cluster/placement.js";
import type { NodeRow } from "../../../src/store/chat-ownership.js";
import { asSessionName } from "../../../src/utils/ids.js";

const NOW = Date.parse("2026-01-01T00:00:00.000Z");

function node(nodeId: string, overrides: Partial<NodeRow> = {}): NodeRow {
  return {
    nodeId,
    address: `http://${nodeId}:7878`,
    startedAt: NOW - 60_000,
    heartbeatExpiresAt: NOW + 10_000,
    liveSlotsFree: 2,
    liveSlotsTotal: 8,
    channels: ["http"],
    state: "serving",
    ...overrides,
  };
}

const chat = asSessionName("alice");

describe("isLiveNode", () => {
  it("counts a node live while its heartbeat holds and it has not left", () => {
    expect(isLiveNode(node("a"), NOW)).toBe(true);
    expect(isLiveNode(node("a", { state: "draining" }), NOW)).toBe(true);
    expect(isLiveNode(node("a", { heartbeatExpiresAt: NOW }), NOW)).toBe(false);
    expect(isLiveNode(node("a", { state: "gone" }), NOW)).toBe(false);
  });
});

describe("chooseNodeForNewChat", () => {
  it("picks the node with the most free live-session slots", () => {
    const nodes = [
      node("a", { liveSlotsFree: 1 }),
      node("b", { liveSlotsFree: 5 }),
      node("c", { liveSlotsFree: 3, liveSlotsTotal: 32 }),
    ];
    expect(chooseNodeForNewChat(nodes, chat, NOW)?.nodeId).toBe("b");
  });

  it("passes over nodes that are draining, gone, or whose heartbeat ran out", () => {
    const nodes = [
      node("a", { liveSlotsFree: 9, state: "draining" }),
      node("b", { liveSlotsFree: 9, state: "gone" }),
      node("c", { liveSlotsFree: 9, heartbeatExpiresAt: NOW - 1 }),
      node("d", { liveSlotsFree: 1 }),
    ];
    expect(chooseNodeForNewChat(nodes, chat, NOW)?.nodeId).toBe("d");
  });

  it("has no node when none is serving", () => {
    expect(chooseNodeForNewChat([], chat, NOW)).toBeUndefined();
    expect(chooseNodeForNewChat([node("a", { state: "draining" })], chat, NOW)).toBeUndefined();
  });

  it("still places a chat when every slot is taken, on the node with the most free", () => {
    const nodes = [node("a", { liveSlotsFree: 0 }), node("b", { liveSlotsFree: -1 })];
    expect(chooseNodeForNewChat(nodes, chat, NOW)?.nodeId).toBe("a");
  });

  it("spreads new chats over nodes with equally many free slots, the same chat to the same node", () => {
    const nodes = [node("a"), node("b"), node("c")];
    const counts = new Map<string, number>();
    for (let index = 0; index < 300; index += 1) {
      const name = asSessionName(`chat-${index}`);
      const chosen = chooseNodeForNewChat(nodes, name, NOW)!.nodeId;
      expect(chooseNodeForNewChat([...nodes].reverse(), name, NOW)!.nodeId).toBe(chosen);
      counts.set(chosen, (counts.get(chosen) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(["a", "b", "c"]);
    for (const count of counts.values()) expect(count).toBeGreaterThan(60);
  });
});

describe("nodeForChannel", () => {
  const nodes = [
    node("a"),
    node("mac", { channels: ["http", "imessage"] }),
    node("mac-2", { channels: ["imessage"], heartbeatExpiresAt: NOW - 1 }),
  ];

  it("sends through the owner when it has the channel", () => {
    expect(nodeForChannel(nodes, "http", "a", NOW)?.nodeId).toBe("a");
  });

  it("sends through a live node that has the channel when the owner does not", () => {
    expect(nodeForChannel(nodes, "imessage", "a", NOW)?.nodeId).toBe("mac");
  });

  it("has no node when no live node has the channel", () => {
    expect(nodeForChannel(nodes, "signal", "a", NOW)).toBeUndefined();
    expect(nodeForChannel([nodes[2]!], "imessage", undefined, NOW)).toBeUndefined();
  });
});
