// @ts-check
/// <reference lib="dom" />
/* global location, window, document, HTMLElement, CSS, clearTimeout, setTimeout */
/**
 * The Session view: one chat's state and registry entry, its conversation as the agent saw it
 * (turn by turn, with timing, cost and folded tool calls), and a box to send a message as that
 * chat and read the reply.
 */
import { ACTION_ORDER, actionLabel, actionsFor, displayName, runAction } from "./actions.js";
import { ApiError, request, sessionPath } from "./api.js";
import { h, replaceChildren, setText } from "./dom.js";
import {
  absoluteTime,
  bytes,
  clockTime,
  cost,
  costSoFar,
  costSoFarNote,
  duration,
  relativeTime,
  STAND_IN_COST_NOTE,
} from "./format.js";

/**
 * @typedef {import("./app.js").Context} Context
 * @typedef {import("./app.js").Session} Session
 * @typedef {{ text: string, from: string | null, handle: string | null, channel: string | null,
 *   received_at: string | null, raw: string | null, at: string | null }} Input
 * @typedef {{ kind: "text", text: string, at: string | null }
 *   | { kind: "tool", id: string, name: string, summary: string, input: string,
 *       result: string | null, is_error: boolean, at: string | null }} Step
 * @typedef {{ index: number, started_at: string | null, ended_at: string | null,
 *   duration_ms: number | null, cost_usd: number | null,
 *   tokens: { input: number, output: number, cache_read: number, cache_creation: number } | null,
 *   model: string | null, inputs: Input[], steps: Step[], is_error: boolean }} Turn
 */

/** Registry fields, in the file's order. */
const REGISTRY_FIELDS = [
  "session_name",
  "contact_name",
  "tier",
  "session_id",
  "created_at",
  "last_message_time",
  "chat_kind",
  "channel",
  "previous_session_ids",
  "turns",
  "errors",
  "restarts",
];

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
  const conversationStatus = h(
    "p",
    { class: "muted", role: "status" },
    "Loading the conversation…",
  );
  const turnsList = h("ol", { class: "turns", "aria-label": "Turns, oldest first" });

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

  const messageInput = h("textarea", {
    id: "send-text",
    name: "text",
    rows: 3,
    maxlength: 100000,
    required: true,
    "aria-describedby": "send-help",
  });
  const sendButton = h("button", { type: "submit" }, "Send");
  const sendStatus = h("p", { class: "send-status", role: "status" });
  const replyOutput = h("output", {
    id: "send-reply",
    class: "reply",
    for: "send-text",
    "aria-live": "polite",
  });
  const sendForm = h(
    "form",
    { class: "send", method: "post", novalidate: true },
    h("label", { for: "send-text" }, "Send a message as this chat"),
    h(
      "p",
      { id: "send-help", class: "muted" },
      "For testing: the agent sees it as a message from this chat; the reply shows here and is not sent to the contact.",
    ),
    messageInput,
    h("div", { class: "send-row" }, sendButton, sendStatus),
    h("p", { class: "reply-label" }, "Reply"),
    replyOutput,
  );
  sendForm.addEventListener("submit", (event) => {
    event.preventDefault();
    void send();
  });
  messageInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      void send();
    }
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
      h(
        "section",
        { class: "conversation", "aria-labelledby": "conversation-title" },
        h("h2", { id: "conversation-title" }, "Conversation"),
        conversationStatus,
        turnsList,
      ),
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

  async function send() {
    const text = messageInput.value;
    if (text.trim() === "") {
      setText(sendStatus, "Write a message first.");
      messageInput.focus();
      return;
    }
    sendButton.disabled = true;
    messageInput.setAttribute("aria-busy", "true");
    setText(sendStatus, "Waiting for the reply…");
    try {
      const result = await request("POST", `${sessionPath(chatId)}/send`, { text });
      if (destroyed) return;
      setText(replyOutput, result.reply ?? "(the agent chose not to reply)");
      setText(sendStatus, "Replied.");
      messageInput.value = "";
      void loadTranscript();
    } catch (error) {
      if (destroyed) return;
      setText(sendStatus, "");
      setText(replyOutput, "");
      context.alert(`Sending failed: ${error instanceof Error ? error.message : String(error)}`);
      setText(
        sendStatus,
        `Sending failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    } finally {
      sendButton.disabled = false;
      messageInput.removeAttribute("aria-busy");
    }
  }

  async function loadTranscript() {
    try {
      const detail = await request("GET", sessionPath(chatId));
      if (destroyed) return;
      session = detail.session;
      showSession();
      /** @type {Turn[]} */
      const turns = detail.transcript;
      loadedFor = transcriptKey(detail.session);
      renderTurns(turns, detail.transcript_turns);
    } catch (error) {
      if (destroyed) return;
      if (error instanceof ApiError && error.status === 401) {
        context.signOut("The token is no longer accepted; sign in again.");
        return;
      }
      setText(
        conversationStatus,
        error instanceof ApiError && error.status === 404
          ? "dispatch has no session for this chat (it may have been forgotten)."
          : `Could not load the conversation: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }

  /**
   * @param {Turn[]} turns
   * @param {number} total
   */
  function renderTurns(turns, total) {
    const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    if (turns.length === 0) {
      setText(
        conversationStatus,
        "No conversation yet: the transcript is written once the agent has answered.",
      );
    } else if (total > turns.length) {
      setText(conversationStatus, `The latest ${turns.length} of ${total} turns.`);
    } else {
      setText(conversationStatus, `${turns.length} ${turns.length === 1 ? "turn" : "turns"}.`);
    }
    // Open tool calls stay open across a reload.
    const open = new Set(
      [...turnsList.querySelectorAll("details[open][data-key]")].map(
        (details) => /** @type {HTMLElement} */ (details).dataset.key,
      ),
    );
    // So does the focus, when it was on a folded part.
    const focused = document.activeElement;
    const focusedKey =
      focused && turnsList.contains(focused)
        ? focused.closest("details[data-key]")?.getAttribute("data-key")
        : undefined;
    replaceChildren(
      turnsList,
      turns.map((turn) => renderTurn(turn, open)),
    );
    if (focusedKey) {
      const summary = turnsList.querySelector(
        `details[data-key="${CSS.escape(focusedKey)}"] > summary`,
      );
      if (summary instanceof HTMLElement) summary.focus();
    }
    if (atBottom && turns.length > 0 && document.activeElement === document.body) {
      turnsList.lastElementChild?.scrollIntoView({ block: "end" });
    }
  }

  /**
   * @param {Turn} turn
   * @param {Set<string | undefined>} open
   */
  function renderTurn(turn, open) {
    // Timing and cost are always there ("–" when unknown), so every turn's line reads alike.
    const meta = [
      clockTime(turn.started_at),
      h(
        "span",
        { class: "turn-time" },
        h("span", { class: "visually-hidden" }, "took "),
        duration(turn.duration_ms),
      ),
      h(
        "span",
        {
          class: "turn-cost",
          title:
            turn.cost_usd === null
              ? "No cost is recorded for this turn: one of dispatch's own context turns, a turn from before costs were recorded, or a resume whose starting figure was lost."
              : context.demo()
                ? STAND_IN_COST_NOTE
                : "This turn's own cost, from the agent's figures.",
        },
        h("span", { class: "visually-hidden" }, turn.cost_usd === null ? "cost unknown" : "cost "),
        turn.cost_usd === null
          ? h("span", { "aria-hidden": "true" }, cost(null))
          : `${cost(turn.cost_usd)}${context.demo() ? " (stand-in)" : ""}`,
      ),
      turn.tokens
        ? `${turn.tokens.input + turn.tokens.cache_read + turn.tokens.cache_creation} in / ${turn.tokens.output} out tokens`
        : null,
      turn.is_error ? "error" : null,
    ].filter((part) => part !== null && part !== "");
    return h(
      "li",
      { class: turn.is_error ? "turn error-turn" : "turn", "data-turn": turn.index },
      h(
        "h3",
        { class: "turn-head" },
        `Turn ${turn.index}`,
        h(
          "span",
          { class: "turn-meta" },
          meta.flatMap((part, index) => (index === 0 ? [part] : [" · ", part])),
        ),
      ),
      turn.inputs.map((input, index) =>
        h(
          "div",
          { class: "bubble in" },
          h(
            "p",
            { class: "who" },
            `${input.from ?? input.handle ?? "Prompt"}${input.channel ? ` via ${input.channel}` : ""}`,
            input.received_at
              ? h("time", { datetime: input.received_at }, ` at ${clockTime(input.received_at)}`)
              : null,
          ),
          h("p", { class: "text" }, input.text),
          input.raw
            ? h(
                "details",
                {
                  "data-key": `${turn.index}-raw-${index}`,
                  open: open.has(`${turn.index}-raw-${index}`),
                },
                h("summary", {}, "As the agent saw it"),
                h("pre", {}, input.raw),
              )
            : null,
        ),
      ),
      turn.steps.map((step) =>
        step.kind === "text"
          ? h(
              "div",
              { class: "bubble out" },
              h("p", { class: "who" }, "Agent"),
              h("p", { class: "text" }, step.text),
            )
          : h(
              "details",
              {
                class: step.is_error ? "tool tool-error" : "tool",
                "data-key": `${turn.index}-${step.id}`,
                open: open.has(`${turn.index}-${step.id}`),
              },
              h(
                "summary",
                {},
                h("span", { class: "tool-name" }, step.name),
                " ",
                h("span", { class: "tool-summary" }, step.summary),
              ),
              h("p", { class: "label" }, "Input"),
              h("pre", {}, step.input),
              h("p", { class: "label" }, step.is_error ? "Result (error)" : "Result"),
              h("pre", {}, step.result ?? "(no result recorded)"),
            ),
      ),
    );
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
    const entry = Object.fromEntries(
      REGISTRY_FIELDS.map((field) => [
        field,
        /** @type {Record<string, unknown>} */ (session)[field],
      ]),
    );
    setText(registry, JSON.stringify({ [session.chat_id]: entry }, null, 2));
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
        if (session)
          setText(conversationStatus, "This session is no longer registered (forgotten).");
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
