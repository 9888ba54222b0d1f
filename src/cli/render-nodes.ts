/**
 * How the cluster's nodes look in the terminal: the table of `dispatch nodes` and `dispatch
 * status`. Pure: views and `now` in, text out.
 */
import type { NodeView } from "../channels/http/control-plane.js";
import { formatTable, type TableColumn } from "./format-table.js";
import { formatRelativeTime } from "./format-time.js";

const NODE_COLUMNS: readonly TableColumn[] = [
  { header: "NODE", maxWidth: 40 },
  { header: "ADDRESS", maxWidth: 40 },
  { header: "STATE" },
  { header: "LEASE" },
  { header: "HEARTBEAT" },
  { header: "STARTED" },
  { header: "POOL", align: "right" },
  { header: "CHANNELS" },
  { header: "CHATS", align: "right" },
];

/**
 * One row per node, by node id; the node that answered is marked `*`. POOL is live sessions over
 * slots; LEASE is `alive` while the node's last heartbeat holds.
 */
export function renderNodeTable(nodes: readonly NodeView[], now: Date): string {
  const rows = [...nodes]
    .sort((a, b) => (a.node_id < b.node_id ? -1 : a.node_id > b.node_id ? 1 : 0))
    .map((node) => [
      node.self ? `${node.node_id} *` : node.node_id,
      node.address,
      node.state,
      node.lease,
      formatRelativeTime(node.last_heartbeat_at, now),
      formatRelativeTime(node.started_at, now),
      `${node.pool.live}/${node.pool.total}`,
      node.channels.length > 0 ? node.channels.join(",") : "-",
      String(node.chats),
    ]);
  return formatTable(NODE_COLUMNS, rows);
}
