// @ts-check
/// <reference lib="dom" />
/* global setInterval, setTimeout, clearInterval, clearTimeout, window */
/**
 * The Health view: queue depths, live sessions against the pool bound, spares, the cluster's nodes,
 * recent errors and restarts, and charts of messages per hour and reply latency over the last day.
 * Refreshed every 5 s and when the sessions change.
 */
import { ApiError, request } from "./api.js";
import { barChart } from "./charts.js";
import { h, replaceChildren, setText } from "./dom.js";
import {
  absoluteTime,
  clockTime,
  dayLabel,
  duration,
  plural,
  relativeTime,
  uptime,
} from "./format.js";
import { createReloadThrottle } from "./reload-throttle.js";

/**
 * @typedef {import("./app.js").Context} Context
 * @typedef {{ start: string, messages: number, replies: number, errors: number, restarts: number,
 *   latency_avg_ms: number | null, latency_max_ms: number | null }} Hour
 * @typedef {{
 *   generated_at: string, status: string, version: string, uptime_seconds: number,
 *   queues: { chat_id: string, session_name: string, contact_name: string | null, state: string,
 *     unanswered: number }[],
 *   sessions: { registered: number, live: number, bound: number | null, waiting: number | null,
 *     evictions: number | null },
 *   spares: { configured: number | null, ready: number | null },
 *   hours: Hour[],
 *   latency_buckets: { label: string, up_to_ms: number | null, count: number }[],
 *   recent_errors: { chat_id: string | null, at: string, code: string, message: string }[],
 *   recent_restarts: { chat_id: string | null, at: string, reason: string }[],
 * }} Health
 * @typedef {{ node_id: string, address: string, state: string, started_at: string,
 *   last_heartbeat_at: string, heartbeat_age_seconds: number, lease: string,
 *   pool: { live: number, total: number }, channels: string[], chats: number,
 *   self: boolean }} Node
 */

const REFRESH_MS = 5_000;

/**
 * @param {Context} context
 * @returns {import("./app.js").View}
 */
export function createHealthView(context) {
  let destroyed = false;
  let loading = false;
  // Sessions changed: load again, at most once a second.
  const reload = createReloadThrottle(() => void load(), 1_000);
  /** @type {Health | undefined} the last figures, drawn again when the window's width changes */
  let lastHealth;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let resizeTimer;

  /** @param {string} label */
  const stat = (label) => {
    const value = h("p", { class: "stat-value" }, "–");
    const note = h("p", { class: "stat-note" }, "\u00a0");
    return {
      value,
      note,
      card: h("div", { class: "stat" }, h("p", { class: "stat-label" }, label), value, note),
    };
  };
  const status = stat("Status");
  const live = stat("Live sessions");
  const waiting = stat("Waiting messages");
  const spares = stat("Spare processes");

  const queues = h("div", { class: "queues" });
  const nodes = h("div", { class: "nodes" });
  const messagesChart = h("figure", { class: "chart-box" });
  const latencyChart = h("figure", { class: "chart-box" });
  const buckets = h("div", { class: "buckets" });
  const errors = h("ul", { class: "events" });
  const restarts = h("ul", { class: "events" });
  const updated = h("p", { class: "muted updated", role: "status" }, "Loading…");

  const element = h(
    "section",
    { class: "view health", "aria-labelledby": "health-title" },
    h("div", { class: "view-head" }, h("h1", { id: "health-title" }, "Health"), updated),
    h("div", { class: "stats" }, status.card, live.card, waiting.card, spares.card),
    h(
      "div",
      { class: "grid" },
      h(
        "section",
        { "aria-labelledby": "messages-title" },
        h("h2", { id: "messages-title" }, "Messages per hour"),
        messagesChart,
      ),
      h(
        "section",
        { "aria-labelledby": "latency-title" },
        h("h2", { id: "latency-title" }, "Reply latency"),
        latencyChart,
        buckets,
      ),
      h(
        "section",
        { "aria-labelledby": "queues-title" },
        h("h2", { id: "queues-title" }, "Queue depths"),
        queues,
      ),
      h(
        "section",
        { "aria-labelledby": "nodes-title" },
        h("h2", { id: "nodes-title" }, "Nodes"),
        nodes,
      ),
      h(
        "section",
        { "aria-labelledby": "errors-title" },
        h("h2", { id: "errors-title" }, "Recent errors"),
        errors,
      ),
      h(
        "section",
        { "aria-labelledby": "restarts-title" },
        h("h2", { id: "restarts-title" }, "Recent restarts"),
        restarts,
      ),
    ),
  );

  async function load() {
    if (loading || destroyed) return;
    loading = true;
    reload.loadStarted();
    try {
      /** @type {[Health, Node[] | Error]} */
      const [health, nodeList] = await Promise.all([
        request("GET", "/v1/dashboard/health"),
        // A failure here (the cluster's storage) leaves the rest of the view to show.
        request("GET", "/v1/nodes").catch((/** @type {unknown} */ error) =>
          error instanceof ApiError && error.status === 401
            ? Promise.reject(error)
            : error instanceof Error
              ? error
              : new Error(String(error)),
        ),
      ]);
      if (!destroyed) {
        render(health);
        renderNodes(nodeList);
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        context.signOut("The token is no longer accepted; sign in again.");
        return;
      }
      setText(updated, `Could not load: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      loading = false;
    }
  }

  /** @param {Node[] | Error} list */
  function renderNodes(list) {
    if (list instanceof Error) {
      replaceChildren(nodes, h("p", { class: "muted" }, `Could not load: ${list.message}`));
      return;
    }
    replaceChildren(
      nodes,
      h(
        "table",
        { class: "compact" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, "Node"),
            h("th", { scope: "col" }, "State"),
            h("th", { scope: "col" }, "Lease"),
            h("th", { scope: "col", class: "numeric" }, "Pool"),
            h("th", { scope: "col" }, "Channels"),
            h("th", { scope: "col", class: "numeric" }, "Chats"),
          ),
        ),
        h(
          "tbody",
          {},
          list.map((node) =>
            h(
              "tr",
              { "data-node-id": node.node_id },
              h(
                "th",
                {
                  scope: "row",
                  title: `${node.address}, started ${absoluteTime(node.started_at)}`,
                },
                node.self ? `${node.node_id} (this one)` : node.node_id,
              ),
              h("td", {}, node.state),
              h(
                "td",
                { title: `last heartbeat ${absoluteTime(node.last_heartbeat_at)}` },
                `${node.lease}, ${node.heartbeat_age_seconds} s ago`,
              ),
              h("td", { class: "numeric" }, `${node.pool.live} of ${node.pool.total}`),
              h("td", {}, node.channels.join(", ") || "none"),
              h("td", { class: "numeric" }, String(node.chats)),
            ),
          ),
        ),
      ),
    );
  }

  /** @param {Health} health */
  function render(health) {
    lastHealth = health;
    setText(updated, `Updated ${clockTime(health.generated_at)}`);
    setText(status.value, health.status === "ok" ? "OK" : "Shutting down");
    setText(status.note, `version ${health.version}, up ${uptime(health.uptime_seconds)}`);
    const { sessions } = health;
    setText(
      live.value,
      sessions.bound === null ? String(sessions.live) : `${sessions.live} of ${sessions.bound}`,
    );
    setText(
      live.note,
      [
        `${sessions.registered} registered`,
        sessions.bound === null ? "no pool bound" : null,
        sessions.waiting ? `${sessions.waiting} waiting for a slot` : null,
        sessions.evictions ? `${plural(sessions.evictions, "eviction")}` : null,
      ]
        .filter(Boolean)
        .join(", "),
    );
    const queued = health.queues.reduce((sum, queue) => sum + queue.unanswered, 0);
    setText(waiting.value, String(queued));
    setText(
      waiting.note,
      health.queues.length === 0
        ? "no chat is waiting"
        : `in ${plural(health.queues.length, "chat")}`,
    );
    const { ready, configured } = health.spares;
    setText(
      spares.value,
      ready === null
        ? configured === null
          ? "–"
          : `? of ${configured}`
        : configured === null
          ? String(ready)
          : `${ready} of ${configured}`,
    );
    setText(
      spares.note,
      configured === 0
        ? "none configured (spareProcesses)"
        : ready === null
          ? "ready now: unknown"
          : "ready now, of spareProcesses",
    );

    replaceChildren(
      queues,
      health.queues.length === 0
        ? h("p", { class: "muted" }, "No messages are waiting for an answer.")
        : h(
            "table",
            { class: "compact" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col" }, "Chat"),
                h("th", { scope: "col" }, "State"),
                h("th", { scope: "col", class: "numeric" }, "Waiting"),
              ),
            ),
            h(
              "tbody",
              {},
              health.queues.map((queue) =>
                h(
                  "tr",
                  {},
                  h(
                    "th",
                    { scope: "row" },
                    h(
                      "a",
                      { href: `#/session/${encodeURIComponent(queue.chat_id)}` },
                      queue.contact_name ?? queue.chat_id,
                    ),
                  ),
                  h("td", {}, queue.state),
                  h("td", { class: "numeric" }, String(queue.unanswered)),
                ),
              ),
            ),
          ),
    );

    const hours = health.hours;
    // The folded number tables stay as the reader left them.
    const messagesOpen = messagesChart.querySelector("details")?.open ?? false;
    const latencyOpen = latencyChart.querySelector("details")?.open ?? false;
    const totalMessages = hours.reduce((sum, hour) => sum + hour.messages, 0);
    const totalReplies = hours.reduce((sum, hour) => sum + hour.replies, 0);
    const busiest = hours.reduce(
      (best, hour) => (hour.messages > best.messages ? hour : best),
      hours[0] ?? { messages: 0, start: "" },
    );
    replaceChildren(
      messagesChart,
      barChart({
        label: `Messages per hour over the last ${hours.length} hours: ${totalMessages} in all${busiest.messages > 0 ? `, at most ${busiest.messages} in the hour from ${hourLabel(busiest.start)}` : ""}.`,
        width: chartWidth(messagesChart),
        unit: "messages per hour",
        integers: true,
        ticks: timeTicks(hours),
        bars: hours.map((hour) => ({
          label: hourLabel(hour.start),
          value: hour.messages,
          title: `${hourLabel(hour.start)}: ${plural(hour.messages, "message")}, ${plural(hour.replies, "reply", "replies")}`,
        })),
      }),
      h(
        "figcaption",
        {},
        `${plural(totalMessages, "message")} and ${plural(totalReplies, "reply", "replies")} in the last ${hours.length} h.`,
      ),
      dataTable(
        messagesOpen,
        "Messages per hour",
        ["Hour", "Messages", "Replies", "Errors", "Restarts"],
        hours.map((hour) => [
          hourLabel(hour.start),
          hour.messages,
          hour.replies,
          hour.errors,
          hour.restarts,
        ]),
      ),
    );

    const slowest = Math.max(0, ...hours.map((hour) => hour.latency_max_ms ?? 0));
    const latencyUnit = unitFor(slowest);
    replaceChildren(
      latencyChart,
      barChart({
        label: `Reply latency per hour over the last ${hours.length} hours: bars are the average, lines the slowest; the slowest reply took ${duration(slowest)}.`,
        width: chartWidth(latencyChart),
        unit: `reply time, ${latencyUnit.name}`,
        scale: latencyUnit.ms,
        ticks: timeTicks(hours),
        bars: hours.map((hour) => ({
          label: hourLabel(hour.start),
          value: hour.latency_avg_ms,
          marker: hour.latency_max_ms,
          title:
            hour.latency_avg_ms === null
              ? `${hourLabel(hour.start)}: no replies`
              : `${hourLabel(hour.start)}: average ${duration(hour.latency_avg_ms)}, slowest ${duration(hour.latency_max_ms)}`,
        })),
      }),
      h(
        "figcaption",
        {},
        slowest > 0
          ? `Bars: average per hour; lines: slowest. Slowest reply: ${duration(slowest)}.`
          : "No replies in the last day.",
      ),
      dataTable(
        latencyOpen,
        "Reply latency per hour",
        ["Hour", "Average", "Slowest"],
        hours.map((hour) => [
          hourLabel(hour.start),
          duration(hour.latency_avg_ms),
          duration(hour.latency_max_ms),
        ]),
      ),
    );
    replaceChildren(
      buckets,
      h(
        "table",
        { class: "compact" },
        h("caption", {}, "Replies by latency, last day"),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, "Latency"),
            h("th", { scope: "col", class: "numeric" }, "Replies"),
          ),
        ),
        h(
          "tbody",
          {},
          health.latency_buckets.map((bucket) =>
            h(
              "tr",
              {},
              h("th", { scope: "row" }, bucket.label),
              h("td", { class: "numeric" }, String(bucket.count)),
            ),
          ),
        ),
      ),
    );

    replaceChildren(
      errors,
      health.recent_errors.length === 0
        ? h("li", { class: "muted" }, "No errors in the last day.")
        : health.recent_errors.map((error) =>
            h(
              "li",
              {},
              h(
                "time",
                { datetime: error.at, title: absoluteTime(error.at) },
                relativeTime(error.at),
              ),
              " ",
              chatLink(error.chat_id),
              " ",
              h("code", {}, error.code),
              h("p", { class: "event-text" }, error.message),
            ),
          ),
    );
    replaceChildren(
      restarts,
      health.recent_restarts.length === 0
        ? h("li", { class: "muted" }, "No restarts in the last day.")
        : health.recent_restarts.map((restart) =>
            h(
              "li",
              {},
              h(
                "time",
                { datetime: restart.at, title: absoluteTime(restart.at) },
                relativeTime(restart.at),
              ),
              " ",
              chatLink(restart.chat_id),
              h("p", { class: "event-text" }, restart.reason),
            ),
          ),
    );
  }

  const timer = setInterval(() => void load(), REFRESH_MS);
  void load();
  // Charts are drawn at their width, so their text keeps its size: draw them again on a resize.
  const onResize = () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (lastHealth && !destroyed) render(lastHealth);
    }, 150);
  };
  window.addEventListener("resize", onResize);

  return {
    element,
    update: reload.request,
    destroy() {
      destroyed = true;
      clearInterval(timer);
      reload.cancel();
      clearTimeout(resizeTimer);
      window.removeEventListener("resize", onResize);
    },
  };
}

/**
 * The chat an event is about, as a link to its session; the daemon's own events name dispatch.
 * @param {string | null} chatId
 */
function chatLink(chatId) {
  return chatId === null
    ? h("strong", {}, "dispatch")
    : h("a", { href: `#/session/${encodeURIComponent(chatId)}` }, chatId);
}

/**
 * When an hour starts, with its day when that is not today: "14:00", "yesterday, 22:00".
 * @param {string} iso
 */
function hourLabel(iso) {
  return clockTime(iso, Date.now(), { seconds: false });
}

/**
 * The time axis' labels: every sixth hour by the clock (00:00, 06:00, ...), each with the time
 * and, on the first and at each midnight, the day under it; the current hour is "now".
 * @param {Hour[]} hours
 * @returns {{ index: number, lines: string[] }[]}
 */
function timeTicks(hours) {
  const ticks = [];
  let first = true;
  for (const [index, hour] of hours.entries()) {
    const date = new Date(hour.start);
    if (Number.isNaN(date.getTime()) || index === hours.length - 1) continue;
    if (date.getHours() % 6 !== 0 || index > hours.length - 5) continue;
    const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    ticks.push({
      index,
      lines: first || date.getHours() === 0 ? [time, dayLabel(hour.start)] : [time],
    });
    first = false;
  }
  if (hours.length > 0) ticks.push({ index: hours.length - 1, lines: ["now"] });
  return ticks;
}

/**
 * The width a chart is drawn at: its box's, once laid out.
 * @param {HTMLElement} box
 */
function chartWidth(box) {
  return box.clientWidth > 0 ? box.clientWidth : undefined;
}

/**
 * The unit the latency axis counts in, for its slowest value.
 * @param {number} slowestMs
 */
function unitFor(slowestMs) {
  if (slowestMs < 2_000) return { name: "ms", ms: 1 };
  if (slowestMs < 120_000) return { name: "seconds", ms: 1_000 };
  return { name: "minutes", ms: 60_000 };
}

/**
 * The chart's numbers as a table, folded.
 * @param {boolean} open
 * @param {string} caption
 * @param {string[]} columns
 * @param {(string | number)[][]} rows
 */
function dataTable(open, caption, columns, rows) {
  return h(
    "details",
    { class: "data", open },
    h("summary", {}, "Show the numbers"),
    h(
      "table",
      { class: "compact" },
      h("caption", { class: "visually-hidden" }, caption),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          columns.map((column) => h("th", { scope: "col" }, column)),
        ),
      ),
      h(
        "tbody",
        {},
        rows.map((row) =>
          h(
            "tr",
            {},
            row.map((cell) => h("td", {}, String(cell))),
          ),
        ),
      ),
    ),
  );
}
