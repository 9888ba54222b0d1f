/** `dispatch send` and `dispatch chat`: talk to a chat's agent through the HTTP API. */
import { createInterface } from "node:readline";
import { Option, type Command } from "commander";
import { DispatchError } from "../../utils/errors.js";
import type { ApiClient, SendMessageInput } from "../api-client.js";
import { runTerminalChat } from "../chat-terminal.js";
import type { CliContext } from "../context.js";

const NO_REPLY = "(no reply)";

/** Errors after which another line cannot succeed either. */
const FATAL_IN_CHAT = new Set(["daemon_not_running", "api_token_missing", "unauthorized"]);

interface SenderOptions {
  sender?: string;
  groupName?: string;
}

function addSenderOptions(command: Command): Command {
  return command
    .addOption(new Option("--sender <handle>", "who wrote it, for a group chat"))
    .addOption(new Option("--group-name <name>", "the group's display name, for a group chat"));
}

export function registerSendCommand(program: Command, context: CliContext): void {
  const send = program
    .command("send")
    .description("send one message to a chat's agent and print its reply")
    .argument("<chat>", "the chat id: phone number, email or group id")
    .argument("<text...>", "the message (words are joined with spaces)")
    .option("--no-wait", "return as soon as the message is accepted; print its id");
  addSenderOptions(send).action(
    async (chat: string, words: string[], options: SenderOptions & { wait: boolean }) => {
      const api = await context.api();
      const input = messageInput(chat, words.join(" "), options);
      if (!options.wait) {
        const accepted = await api.sendMessage(input);
        context.print(accepted.message_id);
        return;
      }
      const result = await api.sendMessageAndWait(input);
      context.print(result.reply ?? NO_REPLY);
    },
  );
}

export function registerChatCommand(program: Command, context: CliContext): void {
  const chat = program
    .command("chat")
    .description("talk to a chat's agent line by line; Ctrl-D leaves")
    .argument("<chat>", "the chat id: phone number, email or group id");
  addSenderOptions(chat).action(async (chatId: string, options: SenderOptions) => {
    const api = await context.api();
    if (context.deps.stdinIsTTY) {
      context.warn(
        `Talking to ${chatId}. Lines are sent as you enter them, also while the agent works ` +
          "(they are steered into its turn). Up and Down recall earlier lines; Ctrl-D leaves.",
      );
      await runTerminalChat({
        input: context.deps.stdin,
        output: context.deps.stdoutStream,
        send: (text, signal) => api.sendMessageAndWait(messageInput(chatId, text, options), signal),
        formatReply: (result) => prefixLines(`${result.session_name}> `, result.reply ?? NO_REPLY),
        isFatal: (error) => FATAL_IN_CHAT.has(error.code),
      });
      return;
    }
    // From a pipe or a file: one line at a time, each reply before the next line, for scripts.
    const lines = createInterface({
      input: context.deps.stdin,
      crlfDelay: Infinity,
      terminal: false,
    });
    try {
      for await (const line of lines) {
        const text = line.trim();
        if (text !== "") await chatTurn(api, context, messageInput(chatId, text, options));
      }
    } finally {
      lines.close();
    }
  });
}

async function chatTurn(
  api: ApiClient,
  context: CliContext,
  input: SendMessageInput,
): Promise<void> {
  try {
    const result = await api.sendMessageAndWait(input);
    context.print(prefixLines(`${result.session_name}> `, result.reply ?? NO_REPLY));
  } catch (error) {
    if (!(error instanceof DispatchError) || FATAL_IN_CHAT.has(error.code)) throw error;
    // A rate limit or one failed turn should not end the conversation.
    context.warn(`error: ${error.message}`);
  }
}

/** `name> first line`, later lines indented under it. */
export function prefixLines(prefix: string, text: string): string {
  const indent = " ".repeat(prefix.length);
  return text
    .split("\n")
    .map((line, index) => (index === 0 ? prefix : indent) + line)
    .join("\n");
}

function messageInput(chatId: string, text: string, options: SenderOptions): SendMessageInput {
  return {
    chatId,
    text,
    ...(options.sender === undefined ? {} : { sender: options.sender }),
    ...(options.groupName === undefined ? {} : { groupName: options.groupName }),
  };
}
