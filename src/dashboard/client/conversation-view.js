// @ts-check
/// <reference lib="dom" />
/* global window, document, HTMLElement, CSS */
/**
 * A chat's conversation as the agent saw it, in the Session view: turn by turn, with timing,
 * cost and folded tool calls; open folds and the focus are kept across a reload.
 */
import { h, replaceChildren, setText } from "./dom.js";
import { clockTime, cost, duration, STAND_IN_COST_NOTE } from "./format.js";

/**
 * @typedef {import("./app.js").Context} Context
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

/**
 * @param {Context} context
 * @returns {{ element: HTMLElement, setStatus(text: string): void,
 *   render(turns: Turn[], total: number): void }}
 */
export function createConversationView(context) {
  const conversationStatus = h(
    "p",
    { class: "muted", role: "status" },
    "Loading the conversation…",
  );
  const turnsList = h("ol", { class: "turns", "aria-label": "Turns, oldest first" });

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

  return {
    element: h(
      "section",
      { class: "conversation", "aria-labelledby": "conversation-title" },
      h("h2", { id: "conversation-title" }, "Conversation"),
      conversationStatus,
      turnsList,
    ),
    setStatus: (text) => setText(conversationStatus, text),
    render: renderTurns,
  };
}
