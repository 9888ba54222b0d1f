/**
 * A node's row (`../store/chat-ownership.ts`) as `GET /v1/nodes` shows it. Pure: the row, the
 * lease length, the time and its chat count in, the view out.
 */
import type { NodeView } from "../channels/http/control-plane.js";
import type { NodeRow } from "../store/chat-ownership.js";

export interface NodeViewInput {
  row: NodeRow;
  /** `cluster.leaseSeconds` in ms: a heartbeat holds this long, so it was written this long before its expiry. */
  leaseMs: number;
  now: number;
  chats: number;
  self: boolean;
}

export function toNodeView(input: NodeViewInput): NodeView {
  const { row, leaseMs, now } = input;
  const lastHeartbeat = row.heartbeatExpiresAt - leaseMs;
  return {
    node_id: row.nodeId,
    address: row.address,
    state: row.state,
    started_at: new Date(row.startedAt).toISOString(),
    last_heartbeat_at: new Date(lastHeartbeat).toISOString(),
    heartbeat_age_seconds: Math.max(0, Math.round((now - lastHeartbeat) / 1000)),
    lease: row.heartbeatExpiresAt > now ? "alive" : "expired",
    pool: {
      live: Math.max(0, row.liveSlotsTotal - row.liveSlotsFree),
      total: row.liveSlotsTotal,
    },
    channels: [...row.channels],
    chats: input.chats,
    self: input.self,
  };
}
