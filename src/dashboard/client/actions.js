// @ts-check
/// <reference lib="dom" />
/**
 * Start, restart, stop and forget: offered as the session's state allows, asked for confirmation,
 * then sent; the outcome is announced.
 */
import { request, sessionPath } from "./api.js";

/**
 * @typedef {import("./app.js").Context} Context
 * @typedef {import("./app.js").Session} Session
 * @typedef {"start" | "restart" | "stop" | "forget"} Action
 */

/** Every action, in the order they are shown. */
export const ACTION_ORDER = /** @type {const} */ (["start", "restart", "stop", "forget"]);

/**
 * @type {Record<Action, { title: string, text: (name: string) => string, done: string,
 *   route: string }>}
 */
const ACTIONS = {
  start: {
    title: "Start this session?",
    text: (name) =>
      `The agent of ${name} starts again now with its conversation, instead of at the next message.`,
    done: "started",
    // Restarting a stopped session starts it.
    route: "restart",
  },
  restart: {
    title: "Restart this session?",
    text: (name) =>
      `The agent of ${name} is stopped and started again with its conversation; messages waiting for an answer are kept. A quarantine is lifted.`,
    done: "restarted",
    route: "restart",
  },
  stop: {
    title: "Stop this session?",
    text: (name) =>
      `The agent of ${name} is stopped. Its conversation is kept: the next message resumes it.`,
    done: "stopped",
    route: "stop",
  },
  forget: {
    title: "Forget this session?",
    text: (name) =>
      `The agent of ${name} is stopped and its registry entry dropped: the next message starts a new conversation. Waiting messages are dropped. This cannot be undone.`,
    done: "forgotten",
    route: "forget",
  },
};

/** States in which the session's agent runs, or is about to: what Stop stops. */
const RUNNING_STATES = new Set(["starting", "idle", "busy", "failed"]);

/**
 * The actions a session's state allows: Start (not Restart) and no Stop when nothing runs; Stop
 * for a quarantined session only while its agent is still up.
 * @param {Session} session
 * @returns {Set<Action>}
 */
export function actionsFor(session) {
  const running =
    RUNNING_STATES.has(session.state) || (session.state === "quarantined" && session.pid !== null);
  /** @type {Set<Action>} */
  const actions = new Set(["forget"]);
  actions.add(session.state === "stopped" ? "start" : "restart");
  if (running) actions.add("stop");
  return actions;
}

/** @param {Session} session */
export function displayName(session) {
  return session.contact_name ?? session.chat_id;
}

/** @param {Action} action */
export function actionLabel(action) {
  return action.charAt(0).toUpperCase() + action.slice(1);
}

/**
 * @param {Context} context
 * @param {Action} action
 * @param {Session} session
 * @returns {Promise<boolean>} whether it was done
 */
export async function runAction(context, action, session) {
  const name = displayName(session);
  const spec = ACTIONS[action];
  const confirmed = await context.confirm({
    title: spec.title,
    text: spec.text(name),
    action: actionLabel(action),
  });
  if (!confirmed) return false;
  try {
    await request("POST", `${sessionPath(session.chat_id)}/${spec.route}`);
    context.notify(`${name}: session ${spec.done}.`);
    return true;
  } catch (error) {
    context.alert(
      `Could not ${action} the session of ${name}: ${error instanceof Error ? error.message : String(error)}`,
    );
    return false;
  }
}
