// @ts-check
/// <reference lib="dom" />
/* global setInterval, clearInterval, document, HTMLButtonElement */
/**
 * The Sessions view: one row per chat, live, sortable by clicking a column's header, filtered by
 * a search box. Rows are kept by chat id and updated in place, so focus and scroll stay put.
 */
import { ACTION_ORDER, actionLabel, actionsFor, displayName, runAction } from "./actions.js";
import { h, setText } from "./dom.js";
import {
  absoluteTime,
  bytes,
  costSoFar,
  costSoFarNote,
  plural,
  relativeTime,
  STAND_IN_COST_NOTE,
} from "./format.js";

/**
 * @typedef {import("./app.js").Context} Context
 * @typedef {import("./app.js").Session} Session
 * @typedef {{
 *   key: string, label: string, numeric?: boolean,
 *   sortValue: (session: Session) => string | number,
 *   text: (session: Session) => string,
 * }} Column
 */

/** @type {Column[]} */
const COLUMNS = [
  {
    key: "contact",
    label: "Contact",
    sortValue: (session) => displayName(session).toLowerCase(),
    text: displayName,
  },
  {
    key: "tier",
    label: "Tier",
    sortValue: (session) => session.tier,
    text: (session) => session.tier,
  },
  {
    key: "state",
    label: "State",
    sortValue: (session) => session.state,
    text: (session) => session.state,
  },
  {
    key: "last_message_time",
    label: "Last message",
    sortValue: (session) => Date.parse(session.last_message_time ?? "") || 0,
    text: (session) => relativeTime(session.last_message_time),
  },
  {
    key: "turns",
    label: "Turns",
    numeric: true,
    sortValue: (session) => session.turns,
    text: (session) => String(session.turns),
  },
  {
    key: "errors",
    label: "Errors",
    numeric: true,
    sortValue: (session) => session.errors,
    text: (session) => String(session.errors),
  },
  {
    key: "restarts",
    label: "Restarts",
    numeric: true,
    sortValue: (session) => session.restarts,
    text: (session) => String(session.restarts),
  },
  {
    key: "cost",
    label: "Cost so far",
    numeric: true,
    sortValue: (session) => session.cost_so_far_usd ?? -1,
    text: costSoFar,
  },
  {
    key: "memory",
    label: "Memory",
    numeric: true,
    sortValue: (session) => session.memory_bytes ?? -1,
    text: (session) => bytes(session.memory_bytes),
  },
];

/** Kept across visits, so coming back from a session finds the list as it was left. */
const preferences = { sortKey: "last_message_time", descending: true, filter: "" };

/**
 * @param {Context} context
 * @returns {import("./app.js").View}
 */
export function createSessionsView(context) {
  /** @type {Map<string, { row: HTMLTableRowElement, cells: Map<string, HTMLElement>, session: Session }>} */
  const rows = new Map();
  /** @type {Map<string, string> | undefined} */
  let knownStates;

  const heading = h("h1", { id: "sessions-title", tabindex: -1 }, "Sessions");
  const count = h("p", { class: "count", role: "status" });
  const filterInput = h("input", {
    id: "session-filter",
    type: "search",
    autocomplete: "off",
    placeholder: "name, number, tier or state",
    value: preferences.filter,
  });
  const sortSelect = h(
    "select",
    { id: "session-sort" },
    COLUMNS.flatMap((column) => [
      h("option", { value: `${column.key}:desc` }, `${column.label}, high to low`),
      h("option", { value: `${column.key}:asc` }, `${column.label}, low to high`),
    ]),
  );
  const headerCells = new Map(
    COLUMNS.map((column) => [
      column.key,
      h(
        "th",
        { scope: "col", class: column.numeric ? "numeric" : "", "data-key": column.key },
        h(
          "button",
          { type: "button", class: "sort", onclick: () => sortBy(column.key) },
          column.label,
          h("span", { class: "sort-mark", "aria-hidden": "true" }),
        ),
      ),
    ]),
  );
  const body = h("tbody");
  const empty = h(
    "p",
    { class: "empty" },
    "No sessions yet: a chat gets one with its first message.",
  );
  const table = h(
    "table",
    { class: "sessions" },
    h("caption", { class: "visually-hidden" }, "Sessions, one row per chat"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        [...headerCells.values()],
        h("th", { scope: "col", class: "actions" }, "Actions"),
      ),
    ),
    body,
  );
  const element = h(
    "section",
    { class: "view", "aria-labelledby": "sessions-title" },
    h("div", { class: "view-head" }, heading, count),
    h(
      "div",
      { class: "toolbar" },
      h("div", { class: "field" }, h("label", { for: "session-filter" }, "Filter"), filterInput),
      h("div", { class: "field" }, h("label", { for: "session-sort" }, "Sort by"), sortSelect),
    ),
    h("div", { class: "table-wrap" }, table),
    empty,
  );

  filterInput.addEventListener("input", () => {
    preferences.filter = filterInput.value;
    render();
  });
  sortSelect.addEventListener("change", () => {
    const [key, direction] = sortSelect.value.split(":");
    preferences.sortKey = key ?? "last_message_time";
    preferences.descending = direction === "desc";
    render();
  });

  /** @param {string} key */
  function sortBy(key) {
    if (preferences.sortKey === key) preferences.descending = !preferences.descending;
    else {
      preferences.sortKey = key;
      preferences.descending = key !== "contact" && key !== "tier" && key !== "state";
    }
    render();
  }

  /** @param {Session} session */
  function createRow(session) {
    /** @type {Map<string, HTMLElement>} */
    const cells = new Map();
    const link = h("a", { href: `#/session/${encodeURIComponent(session.chat_id)}` });
    const sub = h("span", { class: "sub" });
    const contactCell = h("th", { scope: "row", class: "contact" }, link, sub);
    cells.set("contact", link);
    cells.set("contact-sub", sub);
    const otherCells = COLUMNS.slice(1).map((column) => {
      const cell = h("td", {
        class: column.numeric ? "numeric" : "",
        "data-label": column.label,
        "data-key": column.key,
      });
      const content =
        column.key === "state"
          ? h("span", { class: "state" })
          : column.key === "cost"
            ? h("span", { class: "value" })
            : cell;
      if (content !== cell) cell.append(content);
      cells.set(column.key, content);
      if (column.key === "cost") {
        // Demo mode says under each cost whose it is.
        const note = h("span", { class: "sub", hidden: true }, "stand-in");
        cell.append(note);
        cells.set("cost-note", note);
      }
      return cell;
    });
    const actions = ACTION_ORDER.map((action) =>
      h(
        "button",
        {
          type: "button",
          class: action === "forget" ? "small danger-outline" : "small",
          "data-action": action,
          hidden: !actionsFor(session).has(action),
          onclick: () => {
            const current = rows.get(session.chat_id)?.session ?? session;
            void runAction(context, action, current).then((done) => {
              // The row, and the button that had focus, are gone: keep focus in the view.
              if (done && action === "forget") heading.focus();
            });
          },
        },
        actionLabel(action),
        h("span", { class: "visually-hidden", "data-name": "" }),
      ),
    );
    const row = h(
      "tr",
      { "data-chat-id": session.chat_id },
      contactCell,
      otherCells,
      h(
        "td",
        { class: "actions", "data-label": "Actions" },
        h("div", { class: "buttons" }, actions),
      ),
    );
    return { row, cells, session };
  }

  /** @param {{ row: HTMLTableRowElement, cells: Map<string, HTMLElement>, session: Session }} entry */
  function fillRow(entry) {
    const { session, cells, row } = entry;
    setText(cells.get("contact") ?? row, displayName(session));
    setText(
      cells.get("contact-sub") ?? row,
      session.contact_name ? session.chat_id : session.session_name,
    );
    for (const column of COLUMNS.slice(1)) {
      const cell = cells.get(column.key);
      if (cell) setText(cell, column.text(session));
    }
    const state = cells.get("state");
    if (state) state.dataset.state = session.state;
    const last = cells.get("last_message_time");
    if (last) last.title = absoluteTime(session.last_message_time);
    const costCell = cells.get("cost");
    const demo = context.demo();
    if (costCell) costCell.title = demo ? STAND_IN_COST_NOTE : costSoFarNote(session);
    const costNote = cells.get("cost-note");
    if (costNote) costNote.hidden = !demo;
    for (const hidden of row.querySelectorAll("[data-name]")) {
      setText(hidden, ` ${displayName(session)}`);
    }
    // Offered as the state allows; a button that goes keeps its focus in the row.
    const allowed = actionsFor(session);
    for (const button of row.querySelectorAll("button[data-action]")) {
      if (!(button instanceof HTMLButtonElement)) continue;
      const action = /** @type {import("./actions.js").Action} */ (button.dataset.action);
      const hide = !allowed.has(action);
      if (hide && document.activeElement === button) {
        row.querySelector("a")?.focus();
      }
      button.hidden = hide;
    }
  }

  function render() {
    const sessions = context.sessions();
    const column = COLUMNS.find((candidate) => candidate.key === preferences.sortKey) ?? COLUMNS[3];
    const needle = preferences.filter.trim().toLowerCase();
    const shown = sessions
      .filter((session) =>
        needle === ""
          ? true
          : [
              session.contact_name ?? "",
              session.chat_id,
              session.session_name,
              session.tier,
              session.state,
            ]
              .join(" ")
              .toLowerCase()
              .includes(needle),
      )
      .sort((a, b) => {
        const left = column ? column.sortValue(a) : 0;
        const right = column ? column.sortValue(b) : 0;
        const order = left < right ? -1 : left > right ? 1 : a.chat_id.localeCompare(b.chat_id);
        return preferences.descending ? -order : order;
      });

    for (const session of sessions) {
      let entry = rows.get(session.chat_id);
      if (!entry) {
        entry = createRow(session);
        rows.set(session.chat_id, entry);
      }
      entry.session = session;
      fillRow(entry);
    }
    const current = new Set(sessions.map((session) => session.chat_id));
    for (const [chatId, entry] of rows) {
      if (!current.has(chatId)) {
        entry.row.remove();
        rows.delete(chatId);
      }
    }
    // Rows move only when the order changes: moving a row would take focus from its buttons.
    const wanted = shown.map((session) => rows.get(session.chat_id)?.row);
    const present = [...body.children];
    const same =
      wanted.length === present.length && wanted.every((row, index) => row === present[index]);
    if (!same) {
      for (const row of present) if (!wanted.includes(/** @type {any} */ (row))) row.remove();
      wanted.forEach((row, index) => {
        if (row && body.children[index] !== row)
          body.insertBefore(row, body.children[index] ?? null);
      });
    }

    for (const [key, cell] of headerCells) {
      if (key === preferences.sortKey)
        cell.setAttribute("aria-sort", preferences.descending ? "descending" : "ascending");
      else cell.removeAttribute("aria-sort");
    }
    sortSelect.value = `${preferences.sortKey}:${preferences.descending ? "desc" : "asc"}`;
    setText(
      count,
      shown.length === sessions.length
        ? plural(sessions.length, "session")
        : `${plural(sessions.length, "session")}, ${shown.length} shown`,
    );
    setText(
      empty,
      context.loaded()
        ? "No sessions yet: a chat gets one with its first message."
        : "Loading sessions…",
    );
    empty.hidden = sessions.length > 0;
    table.hidden = sessions.length === 0;
  }

  /** Says what changed: new chats and state changes, in one sentence per update. */
  /** @param {Session[]} sessions */
  function announceChanges(sessions) {
    const next = new Map(sessions.map((session) => [session.chat_id, session.state]));
    if (knownStates) {
      const news = [];
      for (const session of sessions) {
        const before = knownStates.get(session.chat_id);
        if (before === undefined) news.push(`new session: ${displayName(session)}`);
        else if (before !== session.state) news.push(`${displayName(session)} is ${session.state}`);
      }
      if (news.length > 0 && news.length <= 5) context.announce(`${news.join("; ")}.`);
      else if (news.length > 5) context.announce(`${news.length} sessions changed.`);
    }
    knownStates = next;
  }

  // Relative times ("12 s ago") age without any update.
  const ticker = setInterval(() => {
    for (const entry of rows.values()) {
      const cell = entry.cells.get("last_message_time");
      if (cell) setText(cell, relativeTime(entry.session.last_message_time));
    }
  }, 10_000);

  return {
    element,
    update(sessions) {
      announceChanges(sessions);
      render();
    },
    destroy() {
      clearInterval(ticker);
    },
  };
}
