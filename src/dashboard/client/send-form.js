// @ts-check
/// <reference lib="dom" />
/**
 * The Session view's box to send a message as the chat and read the reply (for testing: the
 * reply shows here and is not sent to the contact).
 */
import { request, sessionPath } from "./api.js";
import { h, setText } from "./dom.js";

/**
 * @param {import("./app.js").Context} context
 * @param {string} chatId
 * @param {{ isDestroyed(): boolean, onReplied(): void }} hooks
 * @returns {HTMLElement}
 */
export function createSendForm(context, chatId, { isDestroyed, onReplied }) {
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
      if (isDestroyed()) return;
      setText(replyOutput, result.reply ?? "(the agent chose not to reply)");
      setText(sendStatus, "Replied.");
      messageInput.value = "";
      onReplied();
    } catch (error) {
      if (isDestroyed()) return;
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

  return sendForm;
}
