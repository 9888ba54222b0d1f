import type { InboundMessage } from "../channels/channel.js";
import type { Config } from "../config/schema.js";
import { DispatchError } from "../utils/errors.js";
import type { ChatId } from "../utils/ids.js";
import type { Delivery } from "../core/session-manager.js";
import { chatKind, normaliseChatId, type ChatKind } from "../identity/chat-id.js";
import { resolveSender, type ContactBook } from "../identity/contacts.js";
import { createEnvelope } from "../identity/wrap-message.js";

/** Whose a message is, as far as answering it goes: chat, contact name, tier, answered or not. */
export interface ChatIdentity {
  chatId: ChatId;
  kind: ChatKind;
  name: string | null;
  tier: string;
  /** Whether contacts.json, `unknownSenders` and the tier's `respond` say to answer it. */
  answered: boolean;
}

/**
 * A chat id as the channel gave it, in the one form dispatch keys chats by, with the configured
 * default region for phone numbers. Throws `invalid_chat_id` when it cannot be one.
 */
export function normaliseChatIdFor(chatId: string, config: Pick<Config, "defaultRegion">): ChatId {
  return normaliseChatId(chatId, regionOf(config));
}

/**
 * The chat a recorded journal row belongs to: its normalised id, or the id as given when it does
 * not normalise (a row recorded before it was refused as `invalid_chat_id`).
 */
export function chatKeyOf(chatId: string, config: Pick<Config, "defaultRegion">): string {
  try {
    return normaliseChatIdFor(chatId, config);
  } catch {
    return chatId;
  }
}

function regionOf(config: Pick<Config, "defaultRegion">): {
  defaultRegion?: NonNullable<Config["defaultRegion"]>;
} {
  return config.defaultRegion ? { defaultRegion: config.defaultRegion } : {};
}

/**
 * The chat a message belongs to, normalised, with its contact and tier looked up. Pure; throws
 * `invalid_chat_id` when the chat id cannot be one.
 */
export function identifyChat(
  message: InboundMessage,
  context: { contacts: ContactBook; config: Config },
): ChatIdentity {
  const { contacts, config } = context;
  const chatId = normaliseChatIdFor(message.chatId, config);
  const kind = chatKind(chatId);
  const chat =
    kind === "group"
      ? resolveGroup(contacts, chatId, message, config)
      : resolveSender(contacts, chatId, config.unknownSenders);
  const tierSettings = Object.hasOwn(config.tiers, chat.tier) ? config.tiers[chat.tier] : undefined;
  return {
    chatId,
    kind,
    name: chat.name,
    tier: chat.tier,
    answered: chat.answered && tierSettings?.respond === true,
  };
}

/**
 * A channel's message as the session manager takes it: chat id normalised, contact and tier
 * looked up, answered-or-not decided, and the envelope the session wraps the text in (sender,
 * group, channel, time, marker). Pure apart from the envelope's random marker, unless
 * `envelopeNonce` (the one it was handed over with before) is given.
 */
export function prepareDelivery(
  message: InboundMessage,
  context: { contacts: ContactBook; config: Config },
  options: { envelopeNonce?: string } = {},
): Delivery {
  const { contacts, config } = context;
  const { chatId, kind, ...chat } = identifyChat(message, context);
  if (!chat.answered) {
    throw new DispatchError(
      "unknown_sender",
      notAnsweredMessage(chatId, chat.tier, chat.name !== null, config),
    );
  }
  // In a group the chat is the group; the header still names the member who wrote.
  const sender =
    kind === "group"
      ? resolveMember(contacts, message.sender, regionOf(config))
      : { name: chat.name, handle: chatId, tier: chat.tier };
  const envelope = createEnvelope(
    {
      channel: message.channel,
      receivedAt: message.receivedAt,
      sender,
      ...(kind === "group" ? { group: { name: chat.name, chatId } } : {}),
    },
    options.envelopeNonce === undefined ? {} : { nonce: options.envelopeNonce },
  );
  return {
    chatId,
    text: message.text,
    envelope,
    contactName: chat.name,
    tier: chat.tier,
    chatKind: kind,
    channel: message.channel,
  };
}

function resolveGroup(
  contacts: ContactBook,
  chatId: ChatId,
  message: InboundMessage,
  config: Config,
) {
  const group = contacts.lookup(chatId);
  if (group) return { name: group.name, tier: group.tier, answered: true };
  return {
    name: message.groupName ?? null,
    tier: "unknown",
    answered: config.unknownSenders === "respond",
  };
}

function resolveMember(
  contacts: ContactBook,
  handle: string | undefined,
  region: { defaultRegion?: Config["defaultRegion"] },
): { name: string | null; handle: string; tier: string } {
  if (!handle) return { name: null, handle: "unknown", tier: "unknown" };
  let memberId: ChatId | undefined;
  try {
    memberId = normaliseChatId(handle, region);
  } catch {
    return { name: null, handle, tier: "unknown" };
  }
  const match = contacts.lookup(memberId);
  return { name: match?.name ?? null, handle: memberId, tier: match?.tier ?? "unknown" };
}

function notAnsweredMessage(chatId: ChatId, tier: string, known: boolean, config: Config): string {
  if (!known) {
    return (
      `Chat ${chatId} is not in contacts.json and \`unknownSenders\` is "${config.unknownSenders}": ` +
      'add it to contacts.json, or set `unknownSenders` to "respond" in config.json to answer strangers.'
    );
  }
  return `Chat ${chatId} is in tier "${tier}", which is not answered; set \`tiers.${tier}.respond\` to true in config.json to answer it.`;
}
