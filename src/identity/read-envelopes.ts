/**
 * Reads back the envelopes `wrap-message.ts` writes: each message's text as the contact wrote
 * it and its whole header, filled in from what the conversation had heard before (a lean header
 * says only what changed). Pure; what it cannot tell (a transcript read from its middle) is null.
 */
import { unescapeTags } from "./escape-tags.js";
import { heardAfter, type Heard } from "./wrap-message.js";

export interface ReadEnvelope {
  nonce: string;
  /** What the contact wrote. */
  text: string;
  from: string | null;
  handle: string | null;
  tier: string | null;
  channel: string | null;
  /** ISO time, to the minute the header gives. */
  receivedAt: string | null;
  group: string | null;
  groupChatId: string | null;
  /** The envelope as the agent read it. */
  raw: string;
}

const ENVELOPE =
  /<msg nonce="([a-z2-7]{13,32})"((?: [a-z_]+=(?:"(?:[^"\\\n]|\\.)*"|null))*)>\n([\s\S]*?)\n<\/msg nonce="\1">/g;
const ATTRIBUTE = / ([a-z_]+)=("(?:[^"\\\n]|\\.)*"|null)/g;
const FULL_MINUTE = /^\d{4,}-\d\d-\d\d \d\d:\d\d$/;
const TIME_ALONE = /^\d\d:\d\d$/;

/** The envelopes in `text`, in order, and what the conversation has heard after them. */
export function readEnvelopes(
  text: string,
  heard: Heard | undefined,
): { envelopes: ReadEnvelope[]; heard: Heard | undefined } {
  const envelopes: ReadEnvelope[] = [];
  let state = heard;
  for (const match of text.matchAll(ENVELOPE)) {
    const attributes = attributesOf(match[2] ?? "");
    const read = resolve(attributes, state);
    envelopes.push({
      nonce: match[1]!,
      text: unescapeTags(match[3] ?? ""),
      from: read.sender?.name ?? null,
      handle: read.sender?.handle ?? null,
      tier: read.sender?.tier ?? null,
      channel: read.channel ?? null,
      receivedAt: read.minute ? `${read.minute.replace(" ", "T")}:00.000Z` : null,
      group: read.group?.name ?? null,
      groupChatId: read.group?.chatId ?? null,
      raw: match[0],
    });
    state = nextHeard(state, read);
  }
  return { envelopes, heard: state };
}

interface Resolved {
  group: Heard["group"];
  sender: { name: string | null; handle: string | null; tier: string | null } | undefined;
  channel: string | undefined;
  minute: string | undefined;
}

function resolve(attributes: Map<string, string | null>, heard: Heard | undefined): Resolved {
  const text = (name: string): string | undefined => attributes.get(name) ?? undefined;
  const groupChatId = text("group_id");
  const group =
    groupChatId !== undefined
      ? { name: attributes.get("group") ?? null, chatId: groupChatId }
      : heard?.group;
  const channel = text("channel") ?? heard?.channel;
  return {
    group,
    sender: senderOf(attributes, heard),
    channel,
    minute: minuteOf(text("at"), heard),
  };
}

function senderOf(
  attributes: Map<string, string | null>,
  heard: Heard | undefined,
): Resolved["sender"] {
  const handle = attributes.get("handle") ?? undefined;
  const tier = attributes.get("tier") ?? undefined;
  if (handle !== undefined && tier !== undefined) {
    return { name: attributes.get("from") ?? null, handle, tier };
  }
  if (handle !== undefined) {
    // Someone introduced before: named again with their handle, their tier as then.
    const member = heard?.members.get(handle);
    return {
      name: attributes.get("from") ?? member?.name ?? null,
      handle,
      tier: member?.tier ?? null,
    };
  }
  if (heard?.speaker === undefined) return undefined;
  const speaker = heard.members.get(heard.speaker);
  return { name: speaker?.name ?? null, handle: heard.speaker, tier: speaker?.tier ?? null };
}

function minuteOf(at: string | undefined, heard: Heard | undefined): string | undefined {
  if (at === undefined) return heard?.minute;
  if (FULL_MINUTE.test(at)) return at;
  if (TIME_ALONE.test(at) && heard?.minute !== undefined) {
    return `${heard.minute.slice(0, heard.minute.indexOf(" "))} ${at}`;
  }
  return undefined;
}

/** As `heardAfter`, for a header that may not tell everything. */
function nextHeard(heard: Heard | undefined, read: Resolved): Heard | undefined {
  const { sender, channel, minute, group } = read;
  if (sender?.handle && sender.tier !== null && channel !== undefined && minute !== undefined) {
    const receivedAt = new Date(`${minute.replace(" ", "T")}:00.000Z`);
    if (!Number.isNaN(receivedAt.getTime())) {
      return heardAfter(heard, {
        sender: { name: sender.name, handle: sender.handle, tier: sender.tier },
        channel,
        receivedAt,
        ...(group ? { group } : {}),
      });
    }
  }
  return {
    ...(group ? { group } : {}),
    members: heard?.members ?? new Map(),
    ...(sender?.handle ? { speaker: sender.handle } : {}),
    ...(channel !== undefined ? { channel } : {}),
    ...(minute !== undefined ? { minute } : {}),
  };
}

function attributesOf(text: string): Map<string, string | null> {
  const attributes = new Map<string, string | null>();
  for (const [, name, value] of text.matchAll(ATTRIBUTE)) {
    try {
      const parsed: unknown = JSON.parse(value!);
      if (typeof parsed === "string" || parsed === null) attributes.set(name!, parsed);
    } catch {
      // a value the writer never writes: left out
    }
  }
  return attributes;
}
