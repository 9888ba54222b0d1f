// @ts-check
/// <reference lib="dom" />
/** Restart, stop and forget: asked for confirmation, then sent; the outcome is announced. */
import { request, sessionPath } from "./api.js";

/**
 * @typedef {import("./app.js").Context} Context
 * @typedef {import("./app.js").Session} Session
 * @typedef {"restart" | "stop" | "forget"} Action
 */

/** @type {Record<Action, { title: string, text: (name: string) => string, done: string }>} */
const ACTIONS = {
  restart: {
    title: "Restart this session?",
    text: (name) =>
      `The agent of ${name} is stopped and started again with its conversation; messages waiting for an answer are kept. A quarantine is lifted.`,
    done: "restarted",
  },
  stop: {
    title: "Stop this session?",
    text: (name) =>
      `The agent of ${name} is stopped. Its conversation is kept: the next message resumes it.`,
    done: "stopped",
  },
  forget: {
    title: "Forget this session?",
    text: (name) =>
      `The agent of ${name} is stopped and its registry entry dropped: the next message starts a new conversation. Waiting messages are dropped. This cannot be undone.`,
    done: "forgotten",
  },
};

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
    await request("POST", `${sessionPath(session.chat_id)}/${action}`);
    context.notify(`${name}: session ${spec.done}.`);
    return true;
  } catch (error) {
    context.alert(
      `Could not ${action} the session of ${name}: ${error instanceof Error ? error.message : String(error)}`,
    );
    return false;
  }
}
