import { describe, expect, it } from "vitest";
import { parseSignalEvent } from "../../../src/channels/signal/signal-envelope.js";
import {
  dataMessage,
  directText,
  envelopeFrom,
  groupText,
  receiveEvent,
  type Sender,
} from "../../support/signal-envelopes.js";

const ACCOUNT = "+15550000000";
const JOHN: Sender = { number: "+15551234567", uuid: "0e1a2b3c-4d5e-4f60-8172-839405a6b7c8" };
const HIDDEN: Sender = { number: null, uuid: "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D" };
// Standard base64 with both characters a chat id cannot hold as they are.
const GROUP_ID = "+bE4U3zEhCjHKSaPzWImMpnCbU8A1r0/Pmpi+EfPWms=";
const T = 1_765_000_000_000;

const parse = (envelope: Record<string, unknown>) =>
  parseSignalEvent(receiveEvent(envelope, ACCOUNT), ACCOUNT);

describe("parseSignalEvent", () => {
  it("reads a one-to-one text: the chat is the sender's number, the id their ACI and timestamp", () => {
    expect(parse(directText(JOHN, "hello there", T))).toEqual({
      kind: "message",
      message: {
        channel: "signal",
        chatId: JOHN.number,
        sender: JOHN.number,
        text: "hello there",
        externalId: `${JOHN.uuid}:${T}`,
        receivedAt: new Date(T),
      },
    });
  });

  it("gives a sender who shares no number a signal:<uuid> chat id, lower-cased", () => {
    const parsed = parse(directText(HIDDEN, "no number here", T));
    expect(parsed).toMatchObject({
      kind: "message",
      message: { chatId: `signal:${HIDDEN.uuid.toLowerCase()}`, externalId: `${HIDDEN.uuid}:${T}` },
    });
  });

  it("reads a group text: the chat is the group (base64url), the sender the member", () => {
    const parsed = parse(groupText(JOHN, GROUP_ID, "Family Chat", "hello family", T));
    expect(parsed).toMatchObject({
      kind: "message",
      message: {
        chatId: "signal-group:-bE4U3zEhCjHKSaPzWImMpnCbU8A1r0_Pmpi-EfPWms=",
        sender: JOHN.number,
        groupName: "Family Chat",
        text: "hello family",
      },
    });
  });

  it("ignores sync messages (the account's own texts from its other devices)", () => {
    const sync = envelopeFrom({ number: ACCOUNT, uuid: JOHN.uuid }, T, {
      syncMessage: {
        sentMessage: { destination: JOHN.number, timestamp: T, message: "my own words" },
      },
    });
    expect(parse(sync)).toMatchObject({ kind: "skip", reason: "own-message" });
    const fromOtherNumber = envelopeFrom(JOHN, T, { syncMessage: { readMessages: [] } });
    expect(parse(fromOtherNumber)).toMatchObject({ kind: "skip", reason: "sync" });
  });

  it("ignores receipts, typing, calls and stories", () => {
    const receipt = envelopeFrom(JOHN, T, {
      receiptMessage: {
        when: T,
        isDelivery: true,
        isRead: false,
        isViewed: false,
        timestamps: [1],
      },
    });
    const typing = envelopeFrom(JOHN, T, { typingMessage: { action: "STARTED", timestamp: T } });
    const call = envelopeFrom(JOHN, T, { callMessage: { offerMessage: { id: 1 } } });
    const story = envelopeFrom(JOHN, T, { storyMessage: { allowsReplies: true } });
    expect(parse(receipt)).toMatchObject({ kind: "skip", reason: "receipt" });
    expect(parse(typing)).toMatchObject({ kind: "skip", reason: "typing" });
    expect(parse(call)).toMatchObject({ kind: "skip", reason: "call" });
    expect(parse(story)).toMatchObject({ kind: "skip", reason: "story" });
  });

  it("ignores reactions, remote deletes, stickers, group updates and timer changes", () => {
    const reaction = envelopeFrom(JOHN, T, {
      dataMessage: dataMessage(T, {
        reaction: {
          emoji: "👍",
          targetAuthorNumber: ACCOUNT,
          targetAuthorUuid: null,
          targetSentTimestamp: T - 5,
          isRemove: false,
        },
      }),
    });
    const deleted = envelopeFrom(JOHN, T, {
      dataMessage: dataMessage(T, { remoteDelete: { timestamp: T - 5 } }),
    });
    const sticker = envelopeFrom(JOHN, T, {
      dataMessage: dataMessage(T, { sticker: { packId: "00ab", stickerId: 2 } }),
    });
    const update = envelopeFrom(JOHN, T, {
      dataMessage: dataMessage(T, {
        groupInfo: { groupId: GROUP_ID, groupName: "Family", revision: 4, type: "UPDATE" },
      }),
    });
    const timer = envelopeFrom(JOHN, T, {
      dataMessage: dataMessage(T, { isExpirationUpdate: true, expiresInSeconds: 3600 }),
    });
    expect(parse(reaction)).toMatchObject({ kind: "skip", reason: "reaction" });
    expect(parse(deleted)).toMatchObject({ kind: "skip", reason: "delete" });
    expect(parse(sticker)).toMatchObject({ kind: "skip", reason: "sticker" });
    expect(parse(update)).toMatchObject({ kind: "skip", reason: "group-update" });
    expect(parse(timer)).toMatchObject({ kind: "skip", reason: "expiration-update" });
  });

  it("tells the agent about attachments it cannot see, and leaves out a long text's own file", () => {
    const photoOnly = envelopeFrom(JOHN, T, {
      dataMessage: dataMessage(T, {
        attachments: [
          { contentType: "image/jpeg", filename: "beach.jpg", id: "a1", size: 2048, caption: null },
        ],
      }),
    });
    expect(parse(photoOnly)).toMatchObject({
      kind: "message",
      message: { text: "[attachment: beach.jpg, image/jpeg; its content is not shown to you]" },
    });
    const longText = envelopeFrom(JOHN, T, {
      dataMessage: dataMessage(T, {
        message: "a long story",
        attachments: [{ contentType: "text/x-signal-plain", filename: null, id: "l1", size: 9 }],
      }),
    });
    expect(parse(longText)).toMatchObject({ kind: "message", message: { text: "a long story" } });
  });

  it("passes an edit on as a new message saying so, and a quote's text", () => {
    const edit = envelopeFrom(JOHN, T, {
      editMessage: {
        targetSentTimestamp: T - 100,
        dataMessage: dataMessage(T, { message: "meet at 6, not 5" }),
      },
    });
    expect(parse(edit)).toMatchObject({
      kind: "message",
      message: {
        text: "(edited an earlier message; the new text follows)\nmeet at 6, not 5",
        externalId: `${JOHN.uuid}:${T}`,
      },
    });
    const quoted = envelopeFrom(JOHN, T, {
      dataMessage: dataMessage(T, {
        message: "yes, that one",
        quote: { id: T - 9, authorNumber: ACCOUNT, text: "which restaurant?", attachments: [] },
      }),
    });
    expect(parse(quoted)).toMatchObject({
      kind: "message",
      message: { text: '(replying to: "which restaurant?")\nyes, that one' },
    });
  });

  it("skips events of another account, without a sender, undecryptable or not JSON objects", () => {
    expect(
      parseSignalEvent(receiveEvent(directText(JOHN, "hi", T), "+15559999999"), ACCOUNT),
    ).toEqual({ kind: "skip", reason: "other-account" });
    const noSender = { ...directText(JOHN, "hi", T), sourceNumber: null, sourceUuid: null };
    expect(parse(noSender)).toEqual({ kind: "skip", reason: "no-sender" });
    const broken = {
      ...receiveEvent(
        { ...envelopeFrom(JOHN, T, {}), sourceNumber: null, sourceUuid: null },
        ACCOUNT,
      ),
      exception: { message: "InvalidMessageException", type: "ProtocolInvalidMessageException" },
    };
    expect(parseSignalEvent(broken, ACCOUNT)).toEqual({ kind: "skip", reason: "undecryptable" });
    expect(parseSignalEvent([], ACCOUNT)).toEqual({ kind: "skip", reason: "not-an-object" });
    expect(parseSignalEvent({ account: ACCOUNT }, ACCOUNT)).toEqual({
      kind: "skip",
      reason: "no-envelope",
    });
  });
});
