import type { ChatId } from "../utils/ids.js";

/**
 * A messaging channel: brings messages in and sends replies out. Adapters sit beside this file
 * (`http/`, `imessage/`, `signal/`); only the daemon picks them.
 */
export interface Channel {
  /** `http`, `imessage`, ...: recorded with each message and used to route its replies. */
  readonly name: string;
  /** The longest text one outgoing message may carry; longer replies are split. */
  readonly maxMessageLength: number;
  /** Starts taking messages. Throws when the channel cannot work at all (fatal). */
  start(sink: InboundSink): Promise<void>;
  /**
   * Sends one part of a reply to a chat. `outboxId` names the part's journal row when it has one
   * (a recorded reply; not the agent's interim messages).
   */
  send(chatId: ChatId, text: string, outboxId?: number): Promise<void>;
  /** How the reply path retries this channel's sends; `DEFAULT_DELIVERY` when unset. */
  readonly delivery?: DeliveryPolicy;
  /**
   * Every turn's reply (of every chat, silence and failures included), once recorded, for the
   * journal rows it answers. HTTP serves whoever waits for them in a request; Signal takes it as
   * the end of the chat's turn and stops its typing indicator.
   */
  answer?(reply: ChannelReply): void;
  /** Stops taking messages; resolves when the channel has really stopped. */
  stop(): Promise<void>;
}

/** How the reply path (`daemon/reply-sender.ts`) retries a channel's sends of reply parts. */
export interface DeliveryPolicy {
  /** Attempts of one part before it is abandoned. */
  maxAttempts: number;
  /** The wait between attempts starts at 1 s and doubles, up to this. */
  maxDelayMs: number;
  /**
   * Parts left unconfirmed by a stop or a crash are sent again at start when younger than this;
   * older ones, or all when 0, are abandoned.
   */
  resendWindowMs: number;
}

/** iMessage's: five attempts; a part younger than ten minutes is sent again after a restart. */
export const DEFAULT_DELIVERY: DeliveryPolicy = {
  maxAttempts: 5,
  maxDelayMs: Number.POSITIVE_INFINITY,
  resendWindowMs: 10 * 60_000,
};

/** A turn's reply as the reply path hands it to `Channel.answer`. */
export interface ChannelReply {
  chatId: ChatId;
  /** Journal ids of the messages it answers. */
  answers: readonly number[];
  /** The agent session that answered. */
  agentSessionId: string;
  /** The reply whole; null when the agent chose silence or the turn failed. */
  text: string | null;
  /** Why the turn failed, when it did. */
  failure?: string;
}

/** A message as a channel received it, before identity and wrapping. */
export interface InboundMessage {
  channel: string;
  /** The chat as the channel names it: a handle, an email, a group's id. Normalised later. */
  chatId: string;
  /** Who wrote it, when the chat is a group (a handle); the chat itself otherwise. */
  sender?: string;
  /** The group's display name, for group chats. */
  groupName?: string;
  text: string;
  /** The channel's own id for the message, for idempotency. */
  externalId?: string;
  receivedAt: Date;
}

/**
 * Where a channel hands each message. It resolves once the message is durably recorded; a
 * channel that polls passes its new `cursor`, which is saved in the same transaction as the
 * message, so a crash can neither lose a message nor replay one. It rejects when the message
 * could not be recorded: the channel keeps its cursor and tries again. It resolves with what
 * became of the message (`SinkOutcome`), for a channel that shows it (Signal's typing indicator).
 */
export type InboundSink = (
  message: InboundMessage,
  options?: { cursor?: string },
) => Promise<SinkOutcome | void>;

/**
 * `accepted`: handed to its session, a turn will answer it. `answered-before`: a repeat of a
 * message answered already. `refused`: never to be answered (recorded as rejected).
 */
export type SinkOutcome = "accepted" | "answered-before" | "refused";
