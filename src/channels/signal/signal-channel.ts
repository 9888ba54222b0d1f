/**
 * The Signal channel, through signal-cli's HTTP daemon: messages from its event stream
 * (`GET /api/v1/events`), replies and typing indicators through its JSON-RPC
 * (`POST /api/v1/rpc`, `send` and `sendTyping`). docs/signal.md has the formats and sources.
 *
 * Each message is handed to the sink the moment its event is whole (the journal records it in
 * that same call), with its sender and timestamp as its external id: a message signal-cli hands
 * over again is recorded once. A sink that fails is tried again with backoff while the channel
 * runs. The typing indicator shows from a message's arrival until its chat's turn ends.
 */
import type { SignalChannelConfig } from "../../config/schema.js";
import type { Logger } from "../../logging/logger.js";
import { signalTargetOf, type SignalTarget } from "../../identity/signal-address.js";
import type { Clock } from "../../utils/clock.js";
import { DispatchError, describeError } from "../../utils/errors.js";
import type { ChatId } from "../../utils/ids.js";
import type { Channel, InboundMessage, InboundSink } from "../channel.js";
import { openEventStream, type EventStream } from "./event-stream.js";
import { parseSignalEvent, SIGNAL_CHANNEL } from "./signal-envelope.js";
import { createSignalRpc, METHOD_NOT_FOUND, SignalRpcError, type SignalRpc } from "./signal-rpc.js";

/**
 * Replies are split into messages of at most this many characters: signal-cli sends a body over
 * 2,000 bytes (UTF-8) as Signal's long-text attachment, which every Signal app shows whole.
 */
export const SIGNAL_MAX_MESSAGE_LENGTH = 2000;
/** Signal apps show a typing indicator for 15 s; it is sent again before that. */
const TYPING_REFRESH_MS = 10_000;
/** A typing indicator is never kept up longer than this (a turn's default timeout). */
const TYPING_LIMIT_MS = 600_000;
const SINK_RETRY_MS = 1_000;
const SINK_MAX_RETRY_MS = 300_000;
/** External ids handed over lately: a redelivery is not handed over again. */
const REMEMBERED = 2000;

export interface SignalChannelDeps {
  config: SignalChannelConfig;
  logger: Logger;
  clock: Clock;
  /** signal-cli's JSON-RPC; built from `config.url` when not given. */
  rpc?: SignalRpc;
  /** Reconnect backoff of the event stream (tests shorten it). */
  streamBackoffMs?: number;
}

export interface SignalChannel extends Channel {
  /** Whether the event stream is open now. */
  connected(): boolean;
}

interface Typing {
  startedAtMs: number;
  cancelRefresh: () => void;
}

export function createSignalChannel(deps: SignalChannelDeps): SignalChannel {
  const { config, clock } = deps;
  const logger = deps.logger.child({ channel: SIGNAL_CHANNEL });
  const rpc = deps.rpc ?? createSignalRpc({ url: config.url });
  let state: "new" | "running" | "stopped" = "new";
  let sink: InboundSink | undefined;
  let stream: EventStream | undefined;
  const handedOver = new Set<string>();
  const typing = new Map<ChatId, Typing>();
  /** Messages being handed over, by chat; and turns that ended for those chats meanwhile. */
  const inFlight = new Map<ChatId, number>();
  const turnsEnded = new Map<ChatId, number>();
  const retries = new Set<() => void>();

  const targetOf = (chatId: string): SignalTarget => {
    const target = signalTargetOf(chatId);
    if (target) return target;
    throw new DispatchError(
      "signal_bad_recipient",
      `[signal] ${chatId} is not a Signal chat: Signal reaches phone numbers, signal:<uuid> ` +
        "accounts and signal-group:<id> groups.",
    );
  };
  const params = (chatId: string) => {
    const target = targetOf(chatId);
    return {
      account: config.account,
      ...("groupId" in target ? { groupId: target.groupId } : { recipient: [target.recipient] }),
    };
  };

  const sendTyping = (chatId: ChatId, stop: boolean) => {
    rpc
      .call("sendTyping", { ...params(chatId), ...(stop ? { stop: true } : {}) })
      .catch((error: unknown) =>
        logger.debug("signal-typing-failed", { chatId, stop, cause: describeError(error) }),
      );
  };
  const stopTyping = (chatId: ChatId, tell: boolean) => {
    const current = typing.get(chatId);
    if (!current) return;
    current.cancelRefresh();
    typing.delete(chatId);
    if (tell) sendTyping(chatId, true);
  };
  const startTyping = (chatId: ChatId) => {
    if (typing.has(chatId)) return;
    const startedAtMs = clock.now();
    sendTyping(chatId, false);
    const cancelRefresh = clock.every(TYPING_REFRESH_MS, () => {
      if (clock.now() - startedAtMs >= TYPING_LIMIT_MS) stopTyping(chatId, true);
      else sendTyping(chatId, false);
    });
    typing.set(chatId, { startedAtMs, cancelRefresh });
  };

  /**
   * Into the journal; tried again with backoff while it fails (the journal, a session start).
   * Once its session has it, the chat sees the typing indicator, unless a turn of that chat
   * ended meanwhile (it may have answered this very message).
   */
  const handOver = (message: InboundMessage, attempt = 0): void => {
    if (state !== "running" || !sink) return;
    const cursor = message.externalId!;
    const chatId = message.chatId as ChatId;
    const turnsBefore = turnsEnded.get(chatId) ?? 0;
    inFlight.set(chatId, (inFlight.get(chatId) ?? 0) + 1);
    const settled = () => {
      const left = (inFlight.get(chatId) ?? 1) - 1;
      if (left > 0) inFlight.set(chatId, left);
      else {
        inFlight.delete(chatId);
        turnsEnded.delete(chatId);
      }
    };
    sink(message, { cursor }).then(
      (outcome) => {
        const answeredMeanwhile = (turnsEnded.get(chatId) ?? 0) !== turnsBefore;
        settled();
        logger.info("signal-message-receive", { chatId, id: cursor, outcome: outcome ?? "" });
        if (outcome === "accepted" && !answeredMeanwhile && state === "running") {
          startTyping(chatId);
        }
      },
      (error: unknown) => {
        settled();
        const delayMs = Math.min(SINK_RETRY_MS * 2 ** attempt, SINK_MAX_RETRY_MS);
        logger.warn("signal-message-record-failed", {
          chatId: message.chatId,
          id: cursor,
          retryInMs: delayMs,
          cause: describeError(error),
        });
        const cancel = clock.after(delayMs, () => {
          retries.delete(cancel);
          handOver(message, attempt + 1);
        });
        retries.add(cancel);
      },
    );
  };

  const onEvent = (data: string) => {
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch (error) {
      logger.warn("signal-event-unreadable", { cause: describeError(error) });
      return;
    }
    const parsed = parseSignalEvent(json, config.account);
    if (parsed.kind === "skip") {
      logger.debug("signal-event-skip", { reason: parsed.reason, id: parsed.externalId });
      return;
    }
    const { message } = parsed;
    const id = message.externalId!;
    if (handedOver.has(id)) {
      logger.info("signal-message-duplicate", { id });
      return;
    }
    handedOver.add(id);
    if (handedOver.size > REMEMBERED) handedOver.delete(handedOver.values().next().value!);
    handOver(message);
  };

  return {
    name: SIGNAL_CHANNEL,
    maxMessageLength: SIGNAL_MAX_MESSAGE_LENGTH,

    async start(inbound) {
      if (state !== "new") {
        throw new DispatchError("signal_already_started", "[signal] The channel was started.");
      }
      await checkAccount(rpc, config, logger);
      sink = inbound;
      state = "running";
      const url = `${config.url}/api/v1/events?account=${encodeURIComponent(config.account)}`;
      stream = openEventStream({
        url,
        onEvent,
        logger,
        clock,
        ...(deps.streamBackoffMs === undefined ? {} : { backoffMs: deps.streamBackoffMs }),
      });
      logger.info("signal-channel-start", { url: config.url, account: config.account });
    },

    async send(chatId: ChatId, text: string) {
      const result = (await rpc.call("send", { ...params(chatId), message: text })) as
        { results?: { type?: string }[] } | undefined;
      const failed = (result?.results ?? []).filter((each) => each.type !== "SUCCESS");
      if (failed.length > 0) {
        // A group send that reached some members: signal-cli fails only when it reached none.
        logger.warn("signal-send-partial", {
          chatId,
          failed: failed.length,
          of: result?.results?.length,
        });
      }
    },

    // Every turn's end, of every chat (a reply, silence or a failure): the indicator goes.
    answer(reply) {
      if (inFlight.has(reply.chatId)) {
        turnsEnded.set(reply.chatId, (turnsEnded.get(reply.chatId) ?? 0) + 1);
      }
      stopTyping(reply.chatId, true);
    },

    async stop() {
      if (state === "stopped") return;
      state = "stopped";
      for (const cancel of retries) cancel();
      retries.clear();
      for (const chatId of [...typing.keys()]) stopTyping(chatId, false);
      await stream?.stop();
      logger.info("signal-channel-stop", {});
    },

    connected: () => stream?.connected() ?? false,
  };
}

/**
 * At start: a daemon that is there but does not hold the account is a setup error (fatal); one
 * that cannot be reached yet is waited for (the stream retries), since it may start later.
 */
async function checkAccount(
  rpc: SignalRpc,
  config: SignalChannelConfig,
  logger: Logger,
): Promise<void> {
  let accounts: unknown;
  try {
    accounts = await rpc.call("listAccounts");
  } catch (error) {
    if (error instanceof SignalRpcError && error.rpcCode === METHOD_NOT_FOUND) return; // -a ACCOUNT
    if (error instanceof DispatchError && error.code === "signal_unreachable") {
      logger.warn("signal-daemon-unreachable", { url: config.url, cause: error.message });
      return;
    }
    throw error;
  }
  if (!accountListed(accounts, config.account)) {
    throw new DispatchError(
      "signal_account_missing",
      `[signal] signal-cli at ${config.url} does not hold the account ${config.account} ` +
        `(channels.signal.account); it holds ${describeAccounts(accounts)}. Register or link ` +
        "it with signal-cli, or set channels.signal.account to one it holds.",
    );
  }
}

/** The numbers in `listAccounts`'s result, `[{"number": "+1..."}]`. */
export function listedAccounts(accounts: unknown): string[] {
  if (!Array.isArray(accounts)) return [];
  return (accounts as unknown[]).flatMap((entry) => {
    const number = (entry as { number?: unknown } | null)?.number;
    return typeof number === "string" ? [number] : [];
  });
}

export function accountListed(accounts: unknown, account: string): boolean {
  return listedAccounts(accounts).includes(account);
}

export function describeAccounts(accounts: unknown): string {
  const numbers = listedAccounts(accounts);
  return numbers.length === 0 ? "no account" : numbers.join(", ");
}
