// @ts-check
/// <reference lib="dom" />
/**
 * The Log view: the daemon's recent log lines, streamed live as it writes them, filtered by level
 * and text. Secrets are left out by the daemon before a line is sent.
 */
import { openStream } from "./api.js";
import { h, replaceChildren, setText } from "./dom.js";
import { clockTime, plural } from "./format.js";

/**
 * @typedef {import("./app.js").Context} Context
 * @typedef {{ seq: number, time: string, level: string, message: string,
 *   fields: Record<string, unknown> }} LogLine
 */

/** Lines the page keeps: the daemon keeps 1000; a long session of watching keeps more. */
const MAX_LINES = 2_000;
const LEVEL_RANK = /** @type {Record<string, number>} */ ({
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
});
/** Kept across visits. */
const preferences = { level: "debug", filter: "", follow: true };

/**
 * @param {Context} context
 * @returns {import("./app.js").View}
 */
export function createLogView(context) {
  /** @type {LogLine[]} */
  let lines = [];
  let lastSeq = 0;

  const heading = h("h1", { id: "log-title" }, "Log");
  const count = h("p", { class: "count", role: "status" }, "Connecting…");
  const levelSelect = h(
    "select",
    { id: "log-level" },
    h("option", { value: "debug" }, "everything"),
    h("option", { value: "info" }, "info and above"),
    h("option", { value: "warn" }, "warnings and errors"),
    h("option", { value: "error" }, "errors only"),
  );
  levelSelect.value = preferences.level;
  const filterInput = h("input", {
    id: "log-filter",
    type: "search",
    autocomplete: "off",
    placeholder: "event, chat id, text",
    value: preferences.filter,
  });
  const followBox = h("input", { id: "log-follow", type: "checkbox", checked: preferences.follow });
  const list = h("ol", { class: "log-lines", "aria-label": "Log lines, oldest first" });
  const box = h("div", { class: "log-box", tabindex: 0, "aria-labelledby": "log-title" }, list);
  const element = h(
    "section",
    { class: "view log", "aria-labelledby": "log-title" },
    h("div", { class: "view-head" }, heading, count),
    h(
      "p",
      { class: "muted intro" },
      "What the daemon logs, as it logs it: the latest lines it kept, then each new one. Tokens and keys are left out.",
    ),
    h(
      "div",
      { class: "toolbar" },
      h("div", { class: "field" }, h("label", { for: "log-level" }, "Show"), levelSelect),
      h("div", { class: "field" }, h("label", { for: "log-filter" }, "Filter"), filterInput),
      h(
        "div",
        { class: "field check" },
        followBox,
        h("label", { for: "log-follow" }, "Follow new lines"),
      ),
    ),
    box,
  );

  levelSelect.addEventListener("change", () => {
    preferences.level = levelSelect.value;
    render();
  });
  filterInput.addEventListener("input", () => {
    preferences.filter = filterInput.value;
    render();
  });
  followBox.addEventListener("change", () => {
    preferences.follow = followBox.checked;
    if (preferences.follow) box.scrollTop = box.scrollHeight;
  });

  /** @param {LogLine} line */
  function shown(line) {
    if ((LEVEL_RANK[line.level] ?? 30) < (LEVEL_RANK[preferences.level] ?? 20)) return false;
    const needle = preferences.filter.trim().toLowerCase();
    return needle === "" || textOf(line).toLowerCase().includes(needle);
  }

  function render() {
    const visible = lines.filter(shown);
    replaceChildren(list, visible.map(lineItem));
    showCount(visible.length);
    if (preferences.follow) box.scrollTop = box.scrollHeight;
  }

  /** @param {number} visible */
  function showCount(visible) {
    setText(
      count,
      visible === lines.length
        ? plural(lines.length, "line")
        : `${plural(lines.length, "line")}, ${visible} shown`,
    );
  }

  /** @param {LogLine[]} added */
  function append(added) {
    const fresh = added.filter((line) => line.seq > lastSeq);
    if (fresh.length === 0) return;
    lastSeq = fresh.at(-1)?.seq ?? lastSeq;
    lines = [...lines, ...fresh];
    if (lines.length > MAX_LINES) {
      lines = lines.slice(-MAX_LINES);
      render();
      return;
    }
    const items = fresh.filter(shown).map(lineItem);
    list.append(...items);
    showCount(list.children.length);
    if (preferences.follow) box.scrollTop = box.scrollHeight;
  }

  const stream = openStream("/v1/dashboard/logs/events", {
    onEvent(event, data) {
      if (event === "lines") append(JSON.parse(data));
      else if (event === "line") append([JSON.parse(data)]);
    },
    onState(state) {
      if (state !== "live" && lines.length === 0)
        setText(count, state === "connecting" ? "Connecting…" : "Reconnecting…");
    },
    onUnauthorized: () => context.signOut("The token is no longer accepted; sign in again."),
  });

  return {
    element,
    update() {},
    destroy() {
      stream.close();
    },
  };
}

/** @param {LogLine} line */
function lineItem(line) {
  const fields = Object.entries(line.fields);
  return h(
    "li",
    { class: "log-line", "data-level": line.level, "data-seq": line.seq },
    h("time", { datetime: line.time, title: line.time }, clockTime(line.time)),
    " ",
    h("span", { class: "level" }, line.level),
    " ",
    h("span", { class: "message" }, line.message),
    fields.length > 0
      ? h(
          "span",
          { class: "fields" },
          fields.map(([key, value]) =>
            h("span", { class: "field-pair" }, h("span", { class: "key" }, key), "=", show(value)),
          ),
        )
      : null,
  );
}

/** @param {unknown} value */
function show(value) {
  return typeof value === "string" && !/\s/.test(value) && value !== ""
    ? value
    : JSON.stringify(value);
}

/** @param {LogLine} line */
function textOf(line) {
  return `${line.level} ${line.message} ${JSON.stringify(line.fields)}`;
}
