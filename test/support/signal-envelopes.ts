/**
 * Envelopes as signal-cli writes them into its event stream (`JsonMessageEnvelope` and the
 * records it holds, signal-cli commit c26e0632: src/main/java/org/asamk/signal/json/). Every
 * field signal-cli always writes is here, null where it would be null.
 */

export interface Sender {
  /** E.164, or null for a sender who shares no number. */
  number: string | null;
  uuid: string;
  name?: string;
}

let lastTimestamp = 0;
/** A fresh millisecond timestamp, never the same twice in one process. */
export function nextTimestamp(): number {
  lastTimestamp = Math.max(lastTimestamp + 1, Date.now());
  return lastTimestamp;
}

export function envelopeFrom(
  sender: Sender,
  timestamp: number,
  content: Record<string, unknown>,
): Record<string, unknown> {
  return {
    source: sender.number ?? sender.uuid,
    sourceNumber: sender.number,
    sourceUuid: sender.uuid,
    sourceName: sender.name ?? null,
    sourceDevice: 1,
    timestamp,
    serverReceivedTimestamp: timestamp + 40,
    serverDeliveredTimestamp: timestamp + 90,
    ...content,
  };
}

/** A `dataMessage` with the fields `JsonDataMessage` always writes. */
export function dataMessage(
  timestamp: number,
  fields: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    timestamp,
    message: null,
    expiresInSeconds: 0,
    viewOnce: false,
    ...fields,
  };
}

/** A text to the account, one to one. */
export function directText(
  sender: Sender,
  text: string,
  timestamp = nextTimestamp(),
): Record<string, unknown> {
  return envelopeFrom(sender, timestamp, {
    dataMessage: dataMessage(timestamp, { message: text }),
  });
}

/** A text in a group, `groupId` in base64 as signal-cli writes it. */
export function groupText(
  sender: Sender,
  groupId: string,
  groupName: string,
  text: string,
  timestamp = nextTimestamp(),
): Record<string, unknown> {
  return envelopeFrom(sender, timestamp, {
    dataMessage: dataMessage(timestamp, {
      message: text,
      groupInfo: { groupId, groupName, revision: 3, type: "DELIVER" },
    }),
  });
}

/** The event's data: `{"envelope": ..., "account": ...}`, as `JsonReceiveMessageHandler` writes. */
export function receiveEvent(
  envelope: Record<string, unknown>,
  account: string,
): Record<string, unknown> {
  return { envelope, account };
}
