// @ts-check
/// <reference lib="dom" />
/* global HTMLElement */
/**
 * The Session view's state of a chat (a list of facts) and its registry entry as the file has it.
 */
import { h, replaceChildren, setText } from "./dom.js";
import {
  absoluteTime,
  bytes,
  costSoFar,
  costSoFarNote,
  relativeTime,
  STAND_IN_COST_NOTE,
} from "./format.js";

/**
 * @typedef {import("./app.js").Context} Context
 * @typedef {import("./app.js").Session} Session
 */

/** Registry fields, in the file's order. */
/**
 * Fills `facts` (a `dl`) with the session's state, cell by cell so a reader's place is kept.
 * @param {HTMLElement} facts
 * @param {Session} session
 * @param {Context} context
 */
export function showFacts(facts, session, context) {
  /** @type {[string, string][]} */
  const rows = [
    ["State", session.state],
    ["Tier", session.tier],
    ["Chat", `${session.chat_id} (${session.chat_kind})`],
    ["Last message", `${relativeTime(session.last_message_time)}`],
    ["Turns", String(session.turns)],
    ["Errors", String(session.errors)],
    ["Restarts", String(session.restarts)],
    ["Waiting", String(session.unanswered)],
    ["Cost so far", `${costSoFar(session)}${context.demo() ? " (stand-in)" : ""}`],
    ["Node", session.node ?? "none"],
    [
      "Process",
      session.pid === null ? "not running" : `pid ${session.pid}, ${bytes(session.memory_bytes)}`,
    ],
  ];
  if (facts.children.length !== rows.length * 2) {
    replaceChildren(
      facts,
      rows.flatMap(([term]) => [h("dt", {}, term), h("dd", { "data-fact": term })]),
    );
  }
  for (const [term, value] of rows) {
    const cell = facts.querySelector(`[data-fact="${term}"]`);
    if (cell) setText(cell, value);
  }
  const lastCell = facts.querySelector('[data-fact="Last message"]');
  if (lastCell instanceof HTMLElement) lastCell.title = absoluteTime(session.last_message_time);
  const costCell = facts.querySelector('[data-fact="Cost so far"]');
  if (costCell instanceof HTMLElement)
    costCell.title = context.demo() ? STAND_IN_COST_NOTE : costSoFarNote(session);
}

/**
 * The session's registry entry, as `sessions.json` holds it.
 * @param {HTMLElement} registry
 * @param {Session} session
 * @param {string[] | undefined} fields the file's fields in order (`/v1/dashboard/about`)
 */
export function showRegistryEntry(registry, session, fields) {
  // The daemon names the entry's fields in the file's order; without them, the whole view.
  const entry = fields
    ? Object.fromEntries(
        fields.map((field) => [field, /** @type {Record<string, unknown>} */ (session)[field]]),
      )
    : session;
  setText(registry, JSON.stringify({ [session.chat_id]: entry }, null, 2));
}
