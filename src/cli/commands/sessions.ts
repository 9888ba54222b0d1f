/** `dispatch status`, `dispatch nodes` and `dispatch sessions list|show|restart|stop|forget`. */
import type { Command } from "commander";
import { normaliseChatId } from "../../identity/chat-id.js";
import { CommandFailed, type CliContext } from "../context.js";
import {
  renderHealthLine,
  renderSessionDetail,
  renderSessionList,
  renderStatusTable,
} from "../render-sessions.js";
import { renderNodeTable } from "../render-nodes.js";

const NO_SESSIONS = "No sessions yet. Send a message with `dispatch send <chat> <text>`.";

export function registerStatusCommand(program: Command, context: CliContext): void {
  program
    .command("status")
    .description("show the daemon's uptime, its nodes and every session")
    .option("--json", "print the raw JSON from /healthz, /v1/nodes and /v1/sessions")
    .action(async (options: { json?: boolean }) => {
      const api = await context.api();
      const health = await api.health();
      const nodes = await api.listNodes();
      const sessions = await api.listSessions();
      if (options.json) {
        context.print(JSON.stringify({ health, nodes, sessions }, null, 2));
        return;
      }
      context.print(renderHealthLine(health));
      context.print();
      context.deps.stdout(renderNodeTable(nodes, context.deps.now()));
      if (sessions.length === 0) {
        context.print();
        context.print(NO_SESSIONS);
        return;
      }
      context.print();
      context.deps.stdout(renderStatusTable(sessions, context.deps.now()));
    });
}

export function registerNodesCommand(program: Command, context: CliContext): void {
  program
    .command("nodes")
    .description("list the cluster's nodes: state, lease health, pool, channels and chats")
    .option("--json", "print the raw JSON from /v1/nodes")
    .action(async (options: { json?: boolean }) => {
      const nodes = await (await context.api()).listNodes();
      if (options.json) context.print(JSON.stringify(nodes, null, 2));
      else context.deps.stdout(renderNodeTable(nodes, context.deps.now()));
    });
}

export function registerSessionsCommand(program: Command, context: CliContext): void {
  const sessions = program
    .command("sessions")
    .description("list, inspect, restart, stop or forget sessions");

  sessions
    .command("list")
    .description("list every session")
    .option("--json", "print the raw JSON from /v1/sessions")
    .action(async (options: { json?: boolean }) => {
      const list = await (await context.api()).listSessions();
      if (options.json) context.print(JSON.stringify(list, null, 2));
      else if (list.length === 0) context.print(NO_SESSIONS);
      else context.deps.stdout(renderSessionList(list, context.deps.now()));
    });

  sessions
    .command("show")
    .description("show one chat's session in full")
    .argument("<chat>", "the chat id: phone number, email or group id")
    .option("--json", "print the raw JSON")
    .action(async (chat: string, options: { json?: boolean }) => {
      const session = await (await context.api()).getSession(await chatArgument(context, chat));
      if (options.json) context.print(JSON.stringify(session, null, 2));
      else context.deps.stdout(renderSessionDetail(session, context.deps.now()));
    });

  sessions
    .command("restart")
    .description("stop a chat's agent and start it again, resuming its conversation")
    .argument("<chat>", "the chat id")
    .action(async (chat: string) => {
      const session = await (await context.api()).restartSession(await chatArgument(context, chat));
      context.print(
        `Restarted ${session.chat_id} (session ${session.session_name}, ${session.state}).`,
      );
    });

  sessions
    .command("stop")
    .description("stop a chat's agent; its next message resumes the conversation")
    .argument("<chat>", "the chat id")
    .action(async (chat: string) => {
      const chatId = await chatArgument(context, chat);
      await (await context.api()).stopSession(chatId, { forget: false });
      context.print(`Stopped ${chatId}. Its next message resumes the same conversation.`);
    });

  sessions
    .command("forget")
    .description(
      "stop a chat's agent, drop its registry entry and archive its files: its next message starts afresh",
    )
    .argument("<chat>", "the chat id")
    .option("-y, --yes", "do not ask for confirmation")
    .action(async (chat: string, options: { yes?: boolean }) => {
      const chatId = await chatArgument(context, chat);
      if (!options.yes) {
        if (!context.deps.stdinIsTTY) {
          context.warn(
            `error: forgetting ${chatId} cannot be undone and there is no terminal to confirm ` +
              "it on. Pass --yes to forget it anyway.",
          );
          throw new CommandFailed();
        }
        const confirmed = await context.confirm(
          `Forget ${chatId}? Its agent stops, its files move to the archive of forgotten ` +
            "sessions, and its next message starts a new conversation.",
        );
        if (!confirmed) {
          context.print("Nothing forgotten.");
          return;
        }
      }
      const { archive } = await (await context.api()).stopSession(chatId, { forget: true });
      context.print(`Forgot ${chatId}. Its next message starts a new conversation.`);
      if (archive !== null) context.print(`Its files are in ${archive}`);
    });
}

/**
 * The chat id as the registry keys it, so `+1 (555) 123-4567` finds `+15551234567`. When it does
 * not normalise (or config.json cannot be read) the daemon gets it as typed and says what is wrong.
 */
async function chatArgument(context: CliContext, raw: string): Promise<string> {
  // An invalid config.json costs only its `defaultRegion`: numbers with a country code still work.
  const defaultRegion = await context.config().then(
    ({ config }) => config.defaultRegion,
    () => undefined,
  );
  try {
    return normaliseChatId(raw, { defaultRegion });
  } catch {
    return raw.trim();
  }
}
