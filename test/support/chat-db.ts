/**
 * A Messages database (`~/Library/Messages/chat.db`) built with the real table definitions, and
 * helpers that write rows the way Messages does, so the iMessage channel can be tested without a
 * Mac.
 *
 * The tables are as `.schema` prints them on macOS 14 (Sonoma), plus the columns macOS 15
 * (Sequoia) added at the end of `message` and `attachment`. Triggers that call functions only
 * Messages registers (`after_delete_message_plugin`) are left out; the plain-SQL ones are kept.
 * Like the real file, the database is in WAL mode and its tables use AUTOINCREMENT.
 */
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import Database from "better-sqlite3";

export const CHAT_DB_SCHEMA = `
CREATE TABLE _SqliteDatabaseProperties (key TEXT, value TEXT, UNIQUE(key));
CREATE TABLE deleted_messages (ROWID INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, guid TEXT NOT NULL);
CREATE TABLE sync_deleted_messages (ROWID INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, guid TEXT NOT NULL, recordID TEXT);
CREATE TABLE kvtable (ROWID INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, key TEXT UNIQUE NOT NULL, value BLOB NOT NULL);
CREATE TABLE handle (ROWID INTEGER PRIMARY KEY AUTOINCREMENT UNIQUE, id TEXT NOT NULL, country TEXT, service TEXT NOT NULL, uncanonicalized_id TEXT, person_centric_id TEXT, UNIQUE (id, service) );
CREATE TABLE chat (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL, style INTEGER, state INTEGER, account_id TEXT, properties BLOB, chat_identifier TEXT, service_name TEXT, room_name TEXT, account_login TEXT, is_archived INTEGER DEFAULT 0, last_addressed_handle TEXT, display_name TEXT, group_id TEXT, is_filtered INTEGER DEFAULT 0, successful_query INTEGER, engram_id TEXT, server_change_token TEXT, ck_sync_state INTEGER DEFAULT 0, original_group_id TEXT, last_read_message_timestamp INTEGER DEFAULT 0, cloudkit_record_id TEXT, last_addressed_sim_id TEXT, is_blackholed INTEGER DEFAULT 0, syndication_date INTEGER DEFAULT 0, syndication_type INTEGER DEFAULT 0, is_recovered INTEGER DEFAULT 0, is_deleting_incoming_messages INTEGER DEFAULT 0);
CREATE TABLE message (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL, text TEXT, replace INTEGER DEFAULT 0, service_center TEXT, handle_id INTEGER DEFAULT 0, subject TEXT, country TEXT, attributedBody BLOB, version INTEGER DEFAULT 0, type INTEGER DEFAULT 0, service TEXT, account TEXT, account_guid TEXT, error INTEGER DEFAULT 0, date INTEGER, date_read INTEGER, date_delivered INTEGER, is_delivered INTEGER DEFAULT 0, is_finished INTEGER DEFAULT 0, is_emote INTEGER DEFAULT 0, is_from_me INTEGER DEFAULT 0, is_empty INTEGER DEFAULT 0, is_delayed INTEGER DEFAULT 0, is_auto_reply INTEGER DEFAULT 0, is_prepared INTEGER DEFAULT 0, is_read INTEGER DEFAULT 0, is_system_message INTEGER DEFAULT 0, is_sent INTEGER DEFAULT 0, has_dd_results INTEGER DEFAULT 0, is_service_message INTEGER DEFAULT 0, is_forward INTEGER DEFAULT 0, was_downgraded INTEGER DEFAULT 0, is_archive INTEGER DEFAULT 0, cache_has_attachments INTEGER DEFAULT 0, cache_roomnames TEXT, was_data_detected INTEGER DEFAULT 0, was_deduplicated INTEGER DEFAULT 0, is_audio_message INTEGER DEFAULT 0, is_played INTEGER DEFAULT 0, date_played INTEGER, item_type INTEGER DEFAULT 0, other_handle INTEGER DEFAULT 0, group_title TEXT, group_action_type INTEGER DEFAULT 0, share_status INTEGER DEFAULT 0, share_direction INTEGER DEFAULT 0, is_expirable INTEGER DEFAULT 0, expire_state INTEGER DEFAULT 0, message_action_type INTEGER DEFAULT 0, message_source INTEGER DEFAULT 0, associated_message_guid TEXT, associated_message_type INTEGER DEFAULT 0, balloon_bundle_id TEXT, payload_data BLOB, expressive_send_style_id TEXT, associated_message_range_location INTEGER DEFAULT 0, associated_message_range_length INTEGER DEFAULT 0, time_expressive_send_played INTEGER, message_summary_info BLOB, ck_sync_state INTEGER DEFAULT 0, ck_record_id TEXT, ck_record_change_tag TEXT, destination_caller_id TEXT, is_corrupt INTEGER DEFAULT 0, reply_to_guid TEXT, sort_id INTEGER, is_spam INTEGER DEFAULT 0, has_unseen_mention INTEGER DEFAULT 0, thread_originator_guid TEXT, thread_originator_part TEXT, syndication_ranges TEXT, synced_syndication_ranges TEXT, was_delivered_quietly INTEGER DEFAULT 0, did_notify_recipient INTEGER DEFAULT 0, date_retracted INTEGER, date_edited INTEGER, was_detonated INTEGER DEFAULT 0, part_count INTEGER, is_stewie INTEGER DEFAULT 0, is_sos INTEGER DEFAULT 0, is_critical INTEGER DEFAULT 0, bia_reference_id TEXT, is_kt_verified INTEGER DEFAULT 0, fallback_hash TEXT, associated_message_emoji TEXT, is_pending_satellite_send INTEGER DEFAULT 0, needs_relay INTEGER DEFAULT 0, schedule_type INTEGER DEFAULT 0, schedule_state INTEGER DEFAULT 0, sent_or_received_off_grid INTEGER DEFAULT 0, date_recovered INTEGER DEFAULT 0, is_time_sensitive INTEGER DEFAULT 0, ck_chat_id TEXT);
CREATE TABLE chat_message_join (chat_id INTEGER REFERENCES chat (ROWID) ON DELETE CASCADE, message_id INTEGER REFERENCES message (ROWID) ON DELETE CASCADE, message_date INTEGER DEFAULT 0, PRIMARY KEY (chat_id, message_id));
CREATE TABLE chat_handle_join (chat_id INTEGER REFERENCES chat (ROWID) ON DELETE CASCADE, handle_id INTEGER REFERENCES handle (ROWID) ON DELETE CASCADE, UNIQUE(chat_id, handle_id));
CREATE TABLE attachment (ROWID INTEGER PRIMARY KEY AUTOINCREMENT, guid TEXT UNIQUE NOT NULL, created_date INTEGER DEFAULT 0, start_date INTEGER DEFAULT 0, filename TEXT, uti TEXT, mime_type TEXT, transfer_state INTEGER DEFAULT 0, is_outgoing INTEGER DEFAULT 0, user_info BLOB, transfer_name TEXT, total_bytes INTEGER DEFAULT 0, is_sticker INTEGER DEFAULT 0, sticker_user_info BLOB, attribution_info BLOB, hide_attachment INTEGER DEFAULT 0, ck_sync_state INTEGER DEFAULT 0, ck_server_change_token_blob BLOB, ck_record_id TEXT, original_guid TEXT UNIQUE NOT NULL, is_commsafety_sensitive INTEGER DEFAULT 0, emoji_image_content_identifier TEXT DEFAULT NULL, emoji_image_short_description TEXT DEFAULT NULL, preview_generation_state INTEGER DEFAULT 0);
CREATE TABLE message_attachment_join (message_id INTEGER REFERENCES message (ROWID) ON DELETE CASCADE, attachment_id INTEGER REFERENCES attachment (ROWID) ON DELETE CASCADE, UNIQUE(message_id, attachment_id));
CREATE INDEX chat_idx_chat_identifier_service_name ON chat(chat_identifier, service_name);
CREATE INDEX chat_idx_chat_identifier ON chat(chat_identifier);
CREATE INDEX chat_idx_chat_room_name_service_name ON chat(room_name, service_name);
CREATE INDEX chat_idx_is_archived ON chat(is_archived);
CREATE INDEX chat_idx_group_id ON chat(group_id);
CREATE INDEX message_idx_date ON message(date);
CREATE INDEX message_idx_thread_originator_guid ON message(thread_originator_guid);
CREATE INDEX message_idx_handle ON message(handle_id, date);
CREATE INDEX message_idx_handle_id ON message(handle_id);
CREATE INDEX message_idx_is_sent_is_from_me_error ON message(is_sent, is_from_me, error);
CREATE INDEX message_idx_associated_message ON message(associated_message_guid);
CREATE INDEX message_idx_cache_has_attachments ON message(cache_has_attachments);
CREATE INDEX message_idx_other_handle ON message(other_handle);
CREATE INDEX message_idx_was_downgraded ON message(was_downgraded);
CREATE INDEX message_idx_expire_state ON message(expire_state);
CREATE INDEX message_idx_is_read ON message(is_read, is_from_me, is_finished);
CREATE INDEX message_idx_isRead_isFromMe_itemType ON message(is_read, is_from_me, item_type);
CREATE INDEX message_idx_failed ON message(is_finished, is_from_me, error);
CREATE INDEX chat_message_join_idx_message_date_id_chat_id ON chat_message_join(chat_id, message_date, message_id);
CREATE INDEX chat_message_join_idx_message_id_only ON chat_message_join(message_id);
CREATE INDEX chat_handle_join_idx_handle_id ON chat_handle_join(handle_id);
CREATE INDEX message_attachment_join_idx_message_id ON message_attachment_join(message_id);
CREATE INDEX message_attachment_join_idx_attachment_id ON message_attachment_join(attachment_id);
CREATE INDEX attachment_idx_purged_attachments_v2 ON attachment(hide_attachment,ck_sync_state,transfer_state) WHERE hide_attachment=0 AND (ck_sync_state=1 OR ck_sync_state=4) AND transfer_state=0;
CREATE TRIGGER after_delete_on_message AFTER DELETE ON message BEGIN DELETE FROM handle WHERE handle.ROWID = OLD.handle_id AND (SELECT 1 from chat_handle_join WHERE handle_id = OLD.handle_id LIMIT 1) IS NULL AND (SELECT 1 from message WHERE handle_id = OLD.handle_id LIMIT 1) IS NULL AND (SELECT 1 from message WHERE other_handle = OLD.handle_id LIMIT 1) IS NULL; END;
CREATE TRIGGER update_message_date_after_update_on_message AFTER UPDATE OF date ON message BEGIN UPDATE chat_message_join SET message_date = NEW.date WHERE message_id = NEW.ROWID AND message_date != NEW.date; END;
CREATE TRIGGER add_to_sync_deleted_messages AFTER DELETE ON message BEGIN INSERT INTO sync_deleted_messages (guid, recordID) VALUES (OLD.guid, OLD.ck_record_id); END;
CREATE TRIGGER delete_associated_messages_after_delete_on_message AFTER DELETE ON message BEGIN DELETE FROM message WHERE (OLD.associated_message_guid IS NULL AND associated_message_guid IS NOT NULL AND guid = OLD.associated_message_guid); END;
CREATE TRIGGER add_to_deleted_messages AFTER DELETE ON message BEGIN INSERT INTO deleted_messages (guid) VALUES (OLD.guid); END;
CREATE TRIGGER after_delete_on_chat AFTER DELETE ON chat BEGIN DELETE FROM chat_message_join WHERE chat_id = OLD.ROWID; END;
`;

/** Milliseconds from 1970-01-01 to 2001-01-01, Apple's reference date. */
export const APPLE_EPOCH_MS = 978_307_200_000;

/** A time as `message.date` holds it on current macOS: nanoseconds since 2001-01-01. */
export function appleNanoseconds(unixMs: number): bigint {
  return BigInt(Math.round(unixMs - APPLE_EPOCH_MS)) * 1_000_000n;
}

/** A typedstream integer: one byte, `81` + int16 LE, or `82` + int32 LE, as NSArchiver writes. */
function typedstreamInteger(value: number): Buffer {
  if (value >= 0 && value < 0x80) return Buffer.from([value]);
  if (value >= 0 && value <= 0x7fff) {
    const bytes = Buffer.alloc(3);
    bytes[0] = 0x81;
    bytes.writeInt16LE(value, 1);
    return bytes;
  }
  const bytes = Buffer.alloc(5);
  bytes[0] = 0x82;
  bytes.writeInt32LE(value, 1);
  return bytes;
}

const ascii = (text: string) => Buffer.from(text, "latin1");
/** A class name in a typedstream: `84 84 84 <length> <name> <version>` (new object, new class). */
const className = (name: string, version: number) =>
  Buffer.concat([Buffer.from([name.length]), ascii(name), Buffer.from([version])]);

/**
 * `message.attributedBody` for a text: an NSAttributedString archived by NSArchiver with one
 * attribute run (`__kIMMessagePartAttributeName` = 0) over the whole string, byte for byte as
 * Messages writes it. `mutable` gives the NSMutableAttributedString form some rows carry.
 */
export function encodeAttributedBody(text: string, options: { mutable?: boolean } = {}): Buffer {
  const utf8 = Buffer.from(text, "utf8");
  const classChain = options.mutable
    ? Buffer.concat([
        Buffer.from([0x84, 0x84, 0x84]),
        className("NSMutableAttributedString", 0),
        Buffer.from([0x84, 0x84]),
        className("NSAttributedString", 0),
        Buffer.from([0x84, 0x84]),
        className("NSObject", 0),
        Buffer.from([0x85, 0x92, 0x84, 0x84, 0x84]),
        className("NSMutableString", 1),
        Buffer.from([0x84, 0x84]),
        className("NSString", 1),
        Buffer.from([0x95]),
      ])
    : Buffer.concat([
        Buffer.from([0x84, 0x84, 0x84]),
        className("NSAttributedString", 0),
        Buffer.from([0x84, 0x84]),
        className("NSObject", 0),
        Buffer.from([0x85, 0x92, 0x84, 0x84, 0x84]),
        className("NSString", 1),
        Buffer.from([0x94]),
      ]);
  return Buffer.concat([
    Buffer.from([0x04, 0x0b]),
    ascii("streamtyped"),
    Buffer.from([0x81, 0xe8, 0x03, 0x84, 0x01, 0x40]),
    classChain,
    Buffer.from([0x84, 0x01, 0x2b]),
    typedstreamInteger(utf8.length),
    utf8,
    Buffer.from([0x86, 0x84, 0x02, 0x69, 0x49, 0x01]),
    // The attribute run's length counts UTF-16 units, as NSString does.
    typedstreamInteger(text.length),
    Buffer.from([0x92, 0x84, 0x84, 0x84]),
    className("NSDictionary", 0),
    Buffer.from([0x94, 0x84, 0x01, 0x69, 0x01, 0x92, 0x84, 0x96, 0x96, 0x1d]),
    ascii("__kIMMessagePartAttributeName"),
    Buffer.from([0x86, 0x92, 0x84, 0x84, 0x84]),
    className("NSNumber", 0),
    Buffer.from([0x84, 0x84]),
    className("NSValue", 0),
    Buffer.from([0x94, 0x84, 0x01, 0x2a, 0x84, 0x99, 0x99, 0x00, 0x86, 0x86, 0x86]),
  ]);
}

export interface FixtureChat {
  rowId: number;
  guid: string;
  identifier: string;
  style: 43 | 45;
}

export interface FixtureHandle {
  rowId: number;
  id: string;
}

export interface FixtureAttachment {
  transferName: string;
  mimeType: string;
  uti: string;
}

export interface MessageOptions {
  chat?: FixtureChat;
  /** The other party; for own messages in a one-to-one chat Messages also sets it. */
  handle?: FixtureHandle;
  /** Written to `text` unless `textColumn` is false; always archived into `attributedBody`. */
  text?: string;
  /** `false`: leave `text` NULL and keep the words only in `attributedBody`, as macOS 13+ does. */
  textColumn?: boolean;
  attributedBody?: Buffer | null;
  isFromMe?: boolean;
  /** Unix milliseconds; the fixture's clock when absent. */
  dateMs?: number;
  /** Store the date in the pre-High-Sierra format: whole seconds since 2001. */
  dateInSeconds?: boolean;
  associatedMessageType?: number;
  associatedMessageGuid?: string;
  /** For a reaction: the length of the text it reacts to. */
  associatedRangeLength?: number;
  itemType?: number;
  attachments?: FixtureAttachment[];
  guid?: string;
  /** Write the message without its `chat_message_join` row (as seen between two writes). */
  withoutChatJoin?: boolean;
}

export interface FixtureMessage {
  rowId: number;
  guid: string;
}

export interface ChatDbFixture {
  readonly path: string;
  readonly db: Database.Database;
  handle(id: string): FixtureHandle;
  oneToOneChat(handleId: string): { chat: FixtureChat; handle: FixtureHandle };
  groupChat(
    identifier: string,
    memberIds: string[],
    displayName?: string,
  ): { chat: FixtureChat; members: FixtureHandle[] };
  insertMessage(options: MessageOptions): FixtureMessage;
  /** An incoming text in a one-to-one chat. */
  text(handleId: string, text: string, options?: Partial<MessageOptions>): FixtureMessage;
  /** An incoming text in a group chat from one of its members. */
  groupText(
    chat: FixtureChat,
    fromId: string,
    text: string,
    options?: Partial<MessageOptions>,
  ): FixtureMessage;
  /** An incoming text whose `text` column is NULL: the words are only in `attributedBody`. */
  attributedBodyText(handleId: string, text: string): FixtureMessage;
  /** A reaction (2000 loved ... 2005 questioned; 3000-3005 remove it) to another message. */
  tapback(
    handleId: string,
    target: FixtureMessage,
    targetText: string,
    type?: number,
  ): FixtureMessage;
  /** A message the Mac's own account sent (the assistant's reply) in a one-to-one chat. */
  ownMessage(handleId: string, text: string): FixtureMessage;
  /** An incoming message with files: one U+FFFC placeholder per file, then the caption. */
  attachmentMessage(
    handleId: string,
    attachments: FixtureAttachment[],
    caption?: string,
  ): FixtureMessage;
  /** The highest ROWID `message` has ever used (AUTOINCREMENT's sequence). */
  lastRowId(): number;
  close(): void;
}

const OWN_ACCOUNT = "E:assistant@icloud.com";
const OWN_ADDRESS = "assistant@icloud.com";
const REACTION_VERBS: Record<number, string> = {
  2000: "Loved",
  2001: "Liked",
  2002: "Disliked",
  2003: "Laughed at",
  2004: "Emphasized",
  2005: "Questioned",
};

/** Removes a database file and its WAL companions. */
export function removeChatDb(path: string): void {
  for (const suffix of ["", "-wal", "-shm"]) rmSync(`${path}${suffix}`, { force: true });
}

/**
 * Creates `path` (which must not exist) with the real schema and returns a writer connection
 * with helpers; with `existing`, opens the fixture database already at `path` instead. `now`
 * dates messages that do not name their time (unix milliseconds).
 */
export function createChatDb(
  path: string,
  options: { now?: () => number; existing?: boolean } = {},
): ChatDbFixture {
  const now = options.now ?? (() => Date.now());
  const db = new Database(path, { fileMustExist: options.existing ?? false });
  if (!options.existing) {
    db.pragma("journal_mode = WAL");
    db.exec(CHAT_DB_SCHEMA);
    const property = db.prepare("INSERT INTO _SqliteDatabaseProperties (key, value) VALUES (?, ?)");
    property.run("_ClientVersion", "15000");
    property.run("_UniqueIdentifier", randomUUID().toUpperCase());
  }
  const accountGuid = randomUUID().toUpperCase();

  const handle = (id: string): FixtureHandle => {
    const existing = db
      .prepare<[string], { ROWID: number }>("SELECT ROWID FROM handle WHERE id = ?")
      .get(id);
    if (existing) return { rowId: existing.ROWID, id };
    const result = db
      .prepare(
        "INSERT INTO handle (id, country, service, uncanonicalized_id, person_centric_id) " +
          "VALUES (?, 'us', 'iMessage', NULL, NULL)",
      )
      .run(id);
    return { rowId: Number(result.lastInsertRowid), id };
  };

  const insertChat = (
    guid: string,
    identifier: string,
    style: 43 | 45,
    displayName: string,
    members: FixtureHandle[],
  ): FixtureChat => {
    const existing = db
      .prepare<[string], { ROWID: number }>("SELECT ROWID FROM chat WHERE guid = ?")
      .get(guid);
    if (existing) return { rowId: existing.ROWID, guid, identifier, style };
    const result = db
      .prepare(
        "INSERT INTO chat (guid, style, state, account_id, chat_identifier, service_name, " +
          "room_name, account_login, display_name, group_id, successful_query, " +
          "last_addressed_handle) VALUES (?, ?, 3, ?, ?, 'iMessage', ?, ?, ?, ?, 1, ?)",
      )
      .run(
        guid,
        style,
        accountGuid,
        identifier,
        style === 43 ? identifier : null,
        OWN_ACCOUNT,
        displayName,
        randomUUID().toUpperCase(),
        OWN_ADDRESS,
      );
    const chatRowId = Number(result.lastInsertRowid);
    const join = db.prepare("INSERT INTO chat_handle_join (chat_id, handle_id) VALUES (?, ?)");
    for (const member of members) join.run(chatRowId, member.rowId);
    return { rowId: chatRowId, guid, identifier, style };
  };

  const oneToOneChat = (handleId: string) => {
    const other = handle(handleId);
    const chat = insertChat(`iMessage;-;${handleId}`, handleId, 45, "", [other]);
    return { chat, handle: other };
  };

  const groupChat = (identifier: string, memberIds: string[], displayName = "") => {
    const members = memberIds.map(handle);
    const chat = insertChat(`iMessage;+;${identifier}`, identifier, 43, displayName, members);
    return { chat, members };
  };

  const insertMessage = db.transaction((options: MessageOptions): FixtureMessage => {
    const guid = options.guid ?? randomUUID().toUpperCase();
    const dateMs = options.dateMs ?? now();
    const date = options.dateInSeconds
      ? BigInt(Math.floor((dateMs - APPLE_EPOCH_MS) / 1000))
      : appleNanoseconds(dateMs);
    const isFromMe = options.isFromMe ?? false;
    const attachments = options.attachments ?? [];
    const text = options.text;
    const attributedBody =
      options.attributedBody !== undefined
        ? options.attributedBody
        : text === undefined
          ? null
          : encodeAttributedBody(text);
    const isGroup = options.chat?.style === 43;
    const result = db
      .prepare(
        "INSERT INTO message (guid, text, handle_id, attributedBody, version, type, service, " +
          "account, account_guid, date, date_read, date_delivered, is_delivered, is_finished, " +
          "is_from_me, is_read, is_sent, cache_has_attachments, cache_roomnames, item_type, " +
          "associated_message_guid, associated_message_type, associated_message_range_location, " +
          "associated_message_range_length, destination_caller_id, part_count, sort_id) " +
          "VALUES (@guid, @text, @handleId, @attributedBody, 10, 0, 'iMessage', @account, " +
          "@accountGuid, @date, @dateRead, 0, 1, 1, @isFromMe, @isRead, @isSent, " +
          "@hasAttachments, @roomName, @itemType, @associatedGuid, @associatedType, 0, " +
          "@associatedLength, @destination, @partCount, 0)",
      )
      .run({
        guid,
        text: options.textColumn === false ? null : (text ?? null),
        handleId: options.handle?.rowId ?? 0,
        attributedBody,
        account: OWN_ACCOUNT,
        accountGuid,
        date,
        dateRead: 0,
        isFromMe: isFromMe ? 1 : 0,
        isRead: isFromMe ? 1 : 0,
        isSent: isFromMe ? 1 : 0,
        hasAttachments: attachments.length > 0 ? 1 : 0,
        roomName: isGroup ? (options.chat?.identifier ?? null) : null,
        itemType: options.itemType ?? 0,
        associatedGuid: options.associatedMessageGuid ?? null,
        associatedType: options.associatedMessageType ?? 0,
        associatedLength: options.associatedRangeLength ?? 0,
        destination: OWN_ADDRESS,
        partCount: Math.max(1, attachments.length + (text ? 1 : 0)),
      });
    const rowId = Number(result.lastInsertRowid);
    if (options.chat && !options.withoutChatJoin) {
      db.prepare(
        "INSERT INTO chat_message_join (chat_id, message_id, message_date) VALUES (?, ?, ?)",
      ).run(options.chat.rowId, rowId, date);
    }
    for (const attachment of attachments) {
      const attachmentGuid = randomUUID().toUpperCase();
      const inserted = db
        .prepare(
          "INSERT INTO attachment (guid, created_date, start_date, filename, uti, mime_type, " +
            "transfer_state, is_outgoing, transfer_name, total_bytes, original_guid) " +
            "VALUES (?, ?, 0, ?, ?, ?, 5, ?, ?, 48213, ?)",
        )
        .run(
          attachmentGuid,
          Math.floor((dateMs - APPLE_EPOCH_MS) / 1000),
          `~/Library/Messages/Attachments/ab/11/${attachmentGuid}/${attachment.transferName}`,
          attachment.uti,
          attachment.mimeType,
          isFromMe ? 1 : 0,
          attachment.transferName,
          attachmentGuid,
        );
      db.prepare(
        "INSERT INTO message_attachment_join (message_id, attachment_id) VALUES (?, ?)",
      ).run(rowId, Number(inserted.lastInsertRowid));
    }
    return { rowId, guid };
  });

  return {
    path,
    db,
    handle,
    oneToOneChat,
    groupChat,
    insertMessage: (options) => insertMessage(options),
    text(handleId, text, options = {}) {
      const { chat, handle: other } = oneToOneChat(handleId);
      return insertMessage({ chat, handle: other, text, ...options });
    },
    groupText(chat, fromId, text, options = {}) {
      return insertMessage({ chat, handle: handle(fromId), text, ...options });
    },
    attributedBodyText(handleId, text) {
      const { chat, handle: other } = oneToOneChat(handleId);
      return insertMessage({ chat, handle: other, text, textColumn: false });
    },
    tapback(handleId, target, targetText, type = 2000) {
      const { chat, handle: other } = oneToOneChat(handleId);
      const verb = REACTION_VERBS[type >= 3000 ? type - 1000 : type] ?? "Reacted to";
      const text =
        type >= 3000 ? `Removed a reaction from “${targetText}”` : `${verb} “${targetText}”`;
      return insertMessage({
        chat,
        handle: other,
        text,
        associatedMessageType: type,
        associatedMessageGuid: `p:0/${target.guid}`,
        associatedRangeLength: targetText.length,
      });
    },
    ownMessage(handleId, text) {
      const { chat, handle: other } = oneToOneChat(handleId);
      return insertMessage({ chat, handle: other, text, isFromMe: true });
    },
    attachmentMessage(handleId, attachments, caption = "") {
      const { chat, handle: other } = oneToOneChat(handleId);
      const text = "\uFFFC".repeat(attachments.length) + caption;
      return insertMessage({ chat, handle: other, text, attachments });
    },
    lastRowId() {
      const row = db
        .prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'message'")
        .get();
      return row?.seq ?? 0;
    },
    close() {
      db.close();
    },
  };
}

/** A JPEG as Messages records a photo. */
export const PHOTO: FixtureAttachment = {
  transferName: "IMG_0042.jpeg",
  mimeType: "image/jpeg",
  uti: "public.jpeg",
};
