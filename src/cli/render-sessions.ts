/**
 * How sessions look in the terminal: the `status` table, `sessions list` and `sessions show`.
 * Pure: views and `now` in, text out.
 */
import type { HealthView, SessionView } from "../channels/http/control-plane.js";
import { formatTable, type TableColumn } from "./format-table.js";
import { formatDuration, formatRelativeTime } from "./format-time.js";

const NONE = "-";

/** `dispatch 0.1.0 · up 2h 5m · 2 live / 5 registered sessions` */
export function renderHealthLine(health: HealthView): string {
  const state = health.status === "ok" ? "" : " · shutting down";
  const { live, registered } = health.sessions;
  return (
    `dispatch ${health.version} · up ${formatDuration(health.uptime_seconds * 1000)}${state} · ` +
    `${live} live / ${registered} registered ${registered === 1 ? "session" : "sessions"}`
  );
}

const STATUS_COLUMNS: readonly TableColumn[] = [
  { header: "CHAT", maxWidth: 32 },
  { header: "CONTACT", maxWidth: 24 },
  { header: "TIER", maxWidth: 12 },
  { header: "STATE" },
  { header: "LAST MESSAGE" },
  { header: "TURNS", align: "right" },
  { header: "ERRORS", align: "right" },
];

/** The `status` table, one row per session, most recent message first. */
export function renderStatusTable(sessions: readonly SessionView[], now: Date): string {
  const rows = byRecency(sessions).map((session) => [
    session.chat_id,
    session.contact_name ?? NONE,
    session.tier,
    session.state,
    formatRelativeTime(session.last_message_time, now),
    String(session.turns),
    String(session.errors),
  ]);
  return formatTable(STATUS_COLUMNS, rows);
}

const LIST_COLUMNS: readonly TableColumn[] = [
  { header: "CHAT", maxWidth: 32 },
  { header: "SESSION", maxWidth: 24 },
  { header: "CONTACT", maxWidth: 24 },
  { header: "TIER", maxWidth: 12 },
  { header: "STATE" },
  { header: "CHANNEL" },
  { header: "LAST MESSAGE" },
];

/** The `sessions list` table. */
export function renderSessionList(sessions: readonly SessionView[], now: Date): string {
  const rows = byRecency(sessions).map((session) => [
    session.chat_id,
    session.session_name,
    session.contact_name ?? NONE,
    session.tier,
    session.state,
    session.channel ?? NONE,
    formatRelativeTime(session.last_message_time, now),
  ]);
  return formatTable(LIST_COLUMNS, rows);
}

/** `sessions show`: one field a line, then any earlier session ids. */
export function renderSessionDetail(session: SessionView, now: Date): string {
  const at = (time: string | null): string =>
    time === null ? "never" : `${time} (${formatRelativeTime(time, now)})`;
  const fields: [string, string][] = [
    ["chat", `${session.chat_id} (${session.chat_kind})`],
    ["session", session.session_name],
    ["contact", session.contact_name ?? NONE],
    ["tier", session.tier],
    ["state", session.state],
    ["channel", session.channel ?? NONE],
    ["node", session.node ?? NONE],
    ["session id", session.session_id ?? "(none yet)"],
    ["created", at(session.created_at)],
    ["last message", at(session.last_message_time)],
    ["turns", String(session.turns)],
    ["errors", String(session.errors)],
    ["restarts", String(session.restarts)],
    ["unanswered", String(session.unanswered)],
    ["pid", session.pid === null ? NONE : String(session.pid)],
    ["cost", session.total_cost_usd === null ? NONE : `$${session.total_cost_usd.toFixed(2)}`],
  ];
  const width = Math.max(...fields.map(([name]) => name.length));
  const lines = fields.map(([name, value]) => `${name.padEnd(width)}  ${value}`);
  if (session.previous_session_ids.length > 0) {
    lines.push("previous sessions:");
    for (const previous of session.previous_session_ids) {
      lines.push(
        `  ${previous.session_id}  replaced ${at(previous.replaced_at)}: ${previous.reason}`,
      );
    }
  }
  return lines.map((line) => `${line}\n`).join("");
}

function byRecency(sessions: readonly SessionView[]): SessionView[] {
  const time = (session: SessionView): number =>
    session.last_message_time === null ? 0 : Date.parse(session.last_message_time) || 0;
  return [...sessions].sort((left, right) => time(right) - time(left));
}
