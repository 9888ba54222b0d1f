// @ts-check
/// <reference lib="dom" />
/* global location, document, clearTimeout, setTimeout */
/**
 * The Session view: one chat's state and registry entry (`session-facts.js`), its conversation
 * as the agent saw it (`conversation-view.js`), and a box to send a message as that chat and read
 * the reply (`send-form.js`).
 */
import { ACTION_ORDER, actionLabel, actionsFor, displayName, runAction } from "./actions.js";
import { ApiError, request, sessionPath } from "./api.js";
import { createConversationView } from "./conversation-view.js";
import { h, setText } from "./dom.js";
import { createSendForm } from "./send-form.js";
import { showFacts, showRegistryEntry } from "./session-facts.js";

/**
 * @typedef {import("./app.js").Context} Context
 * @typedef {import("./app.js").Session} Session
 * @typedef {import("./conversation-view.js").Turn} Turn
 */

/**
 * @param {Context} context
 * @param {string} chatId
 * @returns {import("./app.js").View}
 */
export function createSessionView(context, chatId) {
  /** @type {Session | undefined} */
  let session = context.sessions().find((candidate) => candidate.chat_id === chatId);
  /** @type {string | undefined} what the shown transcript was loaded for */
  let loadedFor;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let reloadTimer;
  let destroyed = false;

  const title = h("h1", { id: "session-title" }, session ? displayName(session) : chatId);
  const subtitle = h("p", { class: "subtitle" }, chatId);
  const facts = h("dl", { class: "facts" });
  const registry = h("pre", { class: "registry" });
  const conversation = createConversationView(context);

  const actionButtons = ACTION_ORDER.map((action) =>
    h(
      "button",
      {
        type: "button",
        class: action === "forget" ? "danger-outline" : "",
        "data-action": action,
        hidden: session ? !actionsFor(session).has(action) : action === "start",
        onclick: () => {
          if (!session) return;
          void runAction(context, action, session).then((done) => {
            if (done && action === "forget") location.hash = "#/sessions";
          });
        },
      },
      `${actionLabel(action)} session`,
    ),
  );

  const sendForm = createSendForm(context, chatId, {
    isDestroyed: () => destroyed,
    onReplied: () => void loadTranscript(),
  });

  const element = h(
    "section",
    { class: "view session", "aria-labelledby": "session-title" },
    h("p", {}, h("a", { href: "#/sessions", class: "back" }, "← All sessions")),
    h("div", { class: "view-head" }, title, subtitle),
    h("div", { class: "buttons session-actions" }, actionButtons),
    h(
      "div",
      { class: "session-layout" },
      conversation.element,
      h(
        "aside",
        { class: "side" },
        h(
          "section",
          { "aria-labelledby": "send-title" },
          h("h2", { id: "send-title" }, "Send"),
          sendForm,
        ),
        h(
          "section",
          { "aria-labelledby": "state-title" },
          h("h2", { id: "state-title" }, "State"),
          facts,
        ),
        h(
          "section",
          { "aria-labelledby": "registry-title" },
          h("h2", { id: "registry-title" }, "Registry entry"),
          registry,
        ),
      ),
    ),
  );

  async function loadTranscript() {
    try {
      const detail = await request("GET", sessionPath(chatId));
      if (destroyed) return;
      session = detail.session;
      showSession();
      /** @type {Turn[]} */
      const turns = detail.transcript;
      loadedFor = transcriptKey(detail.session);
      conversation.render(turns, detail.transcript_turns);
    } catch (error) {
      if (destroyed) return;
      if (error instanceof ApiError && error.status === 401) {
        context.signOut("The token is no longer accepted; sign in again.");
        return;
      }
      conversation.setStatus(
        error instanceof ApiError && error.status === 404
          ? "dispatch has no session for this chat (it may have been forgotten)."
          : `Could not load the conversation: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }

  function showSession() {
    if (!session) return;
    const allowed = actionsFor(session);
    for (const button of actionButtons) {
      const action = /** @type {import("./actions.js").Action} */ (button.dataset.action);
      if (!allowed.has(action) && document.activeElement === button) title.focus();
      button.hidden = !allowed.has(action);
    }
    setText(title, displayName(session));
    document.title = `${displayName(session)} · dispatch`;
    showFacts(facts, session, context);
    showRegistryEntry(registry, session, context.registryFields());
  }

  /** What a transcript depends on: a new turn or session id means reloading it. */
  /** @param {Session} value */
  function transcriptKey(value) {
    return `${value.session_id}:${value.turns}:${value.last_message_time}`;
  }

  void loadTranscript();
  if (session) showSession();

  return {
    element,
    update(sessions) {
      const next = sessions.find((candidate) => candidate.chat_id === chatId);
      if (!next) {
        if (session) conversation.setStatus("This session is no longer registered (forgotten).");
        return;
      }
      session = next;
      showSession();
      if (loadedFor !== undefined && transcriptKey(next) !== loadedFor) {
        clearTimeout(reloadTimer);
        reloadTimer = setTimeout(() => void loadTranscript(), 300);
      }
    },
    destroy() {
      destroyed = true;
      clearTimeout(reloadTimer);
    },
  };
}
