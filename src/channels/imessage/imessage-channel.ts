/**
 * The iMessage channel: polls chat.db for new rows, hands each message to the sink with its
 * cursor, and sends replies with osascript (or `channels.imessage.sendCommand`).
 */
import type { ImessageChannelConfig } from "../../config/schema.js";
import type { Clock } from "../../utils/clock.js";
import { DispatchError } from "../../utils/errors.js";
import type { ChatId } from "../../utils/ids.js";
import type { Logger } from "../../logging/logger.js";
import type { Channel, InboundSink } from "../channel.js";
import { openChatDbReader, resolveStart, type ChatDbReader } from "./chat-db-reader.js";
import { IMESSAGE_CHANNEL, parseChatDbRow, type ChatDbRow, type ChatRoute } from "./chat-db-row.js";
import { createRouteBook } from "./chat-routes.js";
import { formatCursor } from "./cursor.js";
import {
  defaultSendCommand,
  runCommand as defaultRunCommand,
  sendArgv,
  sendFailure,
  sendStartFailure,
  type RunCommand,
} from "./send-message.js";

export interface ImessageChannelDeps {
  config: ImessageChannelConfig;
  /** The cursor the journal last saved for this channel; `undefined` on the first run. */
  cursor: string | undefined;
  logger: Logger;
  clock: Clock;
  /** Runs the send command; tests pass a recorder. */
  runCommand?: RunCommand;
  /**
   * Saves a cursor that moved past rows carrying no message (the assistant's own replies,
   * tapbacks, backfill) and the starting point of a first run or a replaced database. Without
   * it those advances become durable only with the next message's cursor.
   */
  onCursor?: (cursor: string) => Promise<void>;
  /** Rows read per query; a full batch is followed by another at once. */
  batchSize?: number;
  /** How long one send may take before it is killed and reported. */
  sendTimeoutMs?: number;
  /** How long a row without its chat is waited for before it is skipped. */
  chatJoinGraceMs?: number;
}

export interface ImessageChannel extends Channel {
  /** Resolves when no poll is running: after `clock.advance`, tests wait on this. */
  whenIdle(): Promise<void>;
  /** The cursor of the last row handled, saved or not; `undefined` before `start`. */
  currentCursor(): string | undefined;
}

/** Long replies are split into bubbles of at most this many characters. */
export const IMESSAGE_MAX_MESSAGE_LENGTH = 2000;
const MAX_BACKOFF_MS = 30_000;
const REMEMBERED = 2000;

export function createImessageChannel(deps: ImessageChannelDeps): ImessageChannel {
  const { config, clock } = deps;
  const logger = deps.logger.child({ channel: IMESSAGE_CHANNEL });
  const run = deps.runCommand ?? defaultRunCommand;
  const command = config.sendCommand ?? defaultSendCommand();
  const batchSize = deps.batchSize ?? 100;
  const sendTimeoutMs = deps.sendTimeoutMs ?? 60_000;
  const chatJoinGraceMs = deps.chatJoinGraceMs ?? 5_000;
  const maxBackfillAgeMs = config.maxBackfillAgeSeconds * 1000;

  let state: "new" | "running" | "stopped" = "new";
  let sink: InboundSink | undefined;
  let reader: ChatDbReader | undefined;
  /** The last ROWID handled (delivered or skipped). */
  let position = 0;
  /** Set when the start position is still to be found (a failed first try, a replaced file). */
  let startFrom: "cursor" | "window" | undefined;
  let durableCursor: string | undefined;
  let cancelTimer: (() => void) | undefined;
  let inFlight: Promise<void> | undefined;
  let failures = 0;
  let retryAtMs = 0;
  let waitingForChat: { rowId: number; sinceMs: number } | undefined;
  const routes = createRouteBook();
  /** Guids handed over lately: a replaced chat.db may hold them again under new ROWIDs. */
  const delivered = new Set<string>();

  const currentCursor = () =>
    reader && startFrom === undefined
      ? formatCursor({ rowId: position, dbId: reader.dbId })
      : undefined;

  const transientFailure = (message: string, error: unknown, fields: object = {}) => {
    failures += 1;
    const delayMs = Math.min(
      config.pollIntervalMs * 2 ** Math.min(failures - 1, 10),
      MAX_BACKOFF_MS,
    );
    retryAtMs = clock.now() + delayMs;
    logger.warn(message, { ...fields, cause: error, failures, retryInMs: delayMs });
  };

  /** The open reader, reopened (and the start found again) when the file was replaced. */
  const prepareReader = (): ChatDbReader => {
    if (reader && !reader.isCurrentFile()) {
      logger.warn("imessage-database-replaced", { reason: "file changed", rowId: position });
      reader.close();
      reader = undefined;
      startFrom = "window";
    }
    reader ??= openChatDbReader({ dbPath: config.dbPath });
    if (startFrom === "cursor") {
      position = resolveStart(reader, deps.cursor, {
        nowMs: clock.now(),
        maxBackfillAgeMs,
        logger,
      }).rowId;
    } else if (startFrom === "window") {
      position = reader.windowStart(clock.now(), maxBackfillAgeMs);
      logger.info("imessage-cursor-recover", { rowId: position, dbId: reader.dbId });
    }
    if (startFrom !== undefined) waitingForChat = undefined;
    startFrom = undefined;
    return reader;
  };

  /** Whether to hold the batch at a row whose chat join is missing (Messages writes it later). */
  const shouldWaitForChat = (rowId: number): boolean => {
    const nowMs = clock.now();
    if (waitingForChat?.rowId !== rowId) waitingForChat = { rowId, sinceMs: nowMs };
    if (nowMs - waitingForChat.sinceMs < chatJoinGraceMs) return true;
    waitingForChat = undefined;
    logger.warn("imessage-row-without-chat-skipped", { rowId, waitedMs: chatJoinGraceMs });
    return false;
  };

  /** Handles rows in order; `false` when the batch stopped early (sink failure, waiting). */
  const handleRows = async (current: ChatDbReader, rows: ChatDbRow[]): Promise<boolean> => {
    let backfill = 0;
    try {
      for (const row of rows) {
        if (state !== "running") return false;
        const parsed = parseChatDbRow(row, { nowMs: clock.now(), maxBackfillAgeMs });
        if (parsed.route) routes.learn(parsed.route);
        if (parsed.kind === "skip") {
          if (parsed.reason === "no-chat" && shouldWaitForChat(row.rowId)) return false;
          if (parsed.reason === "backfill") backfill += 1;
          logger.debug("imessage-row-skip", {
            rowId: row.rowId,
            reason: parsed.reason,
            guid: row.guid,
          });
          position = row.rowId;
          continue;
        }
        const { message } = parsed;
        if (message.externalId && delivered.has(message.externalId)) {
          logger.debug("imessage-row-skip", {
            rowId: row.rowId,
            reason: "delivered",
            guid: row.guid,
          });
          position = row.rowId;
          continue;
        }
        const cursor = formatCursor({ rowId: row.rowId, dbId: current.dbId });
        try {
          await sink?.(message, { cursor });
        } catch (error) {
          transientFailure("imessage message record failed", error, { rowId: row.rowId });
          return false;
        }
        position = row.rowId;
        durableCursor = cursor;
        if (message.externalId) {
          delivered.add(message.externalId);
          if (delivered.size > REMEMBERED) delivered.delete(delivered.values().next().value!);
        }
        logger.info("imessage-message-receive", { rowId: row.rowId, chatId: message.chatId });
      }
      return true;
    } finally {
      if (backfill > 0) logger.info("imessage-backfill-skip", { count: backfill });
    }
  };

  const saveCursor = async () => {
    const cursor = currentCursor();
    if (!deps.onCursor || cursor === undefined || cursor === durableCursor) return;
    try {
      await deps.onCursor(cursor);
      durableCursor = cursor;
    } catch (error) {
      logger.warn("imessage-cursor-save-failed", { cause: error, cursor });
    }
  };

  const poll = async () => {
    const failuresBefore = failures;
    for (;;) {
      let current: ChatDbReader;
      let rows: ChatDbRow[];
      try {
        current = prepareReader();
        rows = current.readAfter(position, batchSize);
        if (rows.length === 0 && current.lastRowId() < position) {
          logger.warn("imessage-database-replaced", { reason: "rows went back", rowId: position });
          startFrom = "window";
          continue;
        }
      } catch (error) {
        transientFailure("imessage poll failed", error, { rowId: position });
        break;
      }
      const finished = await handleRows(current, rows);
      if (!finished || rows.length < batchSize || state !== "running") break;
    }
    await saveCursor();
    if (failures === failuresBefore) {
      failures = 0;
      retryAtMs = 0;
    }
  };

  const tick = () => {
    if (inFlight || state !== "running" || clock.now() < retryAtMs) return;
    inFlight = poll()
      .catch((error: unknown) => logger.error("imessage-poll-crashed", { cause: error }))
      .finally(() => {
        inFlight = undefined;
      });
  };

  /** Asks chat.db where a chat id's replies go; a failed lookup falls back to a guess. */
  const lookupChat = (chatId: string): ChatRoute | undefined => {
    try {
      return reader?.findChat(chatId);
    } catch (error) {
      logger.debug("imessage-chat-lookup-failed", { chatId, cause: error });
      return undefined;
    }
  };

  return {
    name: IMESSAGE_CHANNEL,
    maxMessageLength: IMESSAGE_MAX_MESSAGE_LENGTH,

    async start(inbound) {
      if (state !== "new") {
        throw new DispatchError(
          "imessage_already_started",
          "[imessage] The channel was already started.",
        );
      }
      reader = openChatDbReader({ dbPath: config.dbPath });
      sink = inbound;
      state = "running";
      try {
        const start = resolveStart(reader, deps.cursor, {
          nowMs: clock.now(),
          maxBackfillAgeMs,
          logger,
        });
        position = start.rowId;
        if (start.reason === "cursor")
          durableCursor = formatCursor({ rowId: position, dbId: reader.dbId });
      } catch (error) {
        // A locked database at this moment is not fatal: the first poll finds the start instead.
        startFrom = "cursor";
        logger.warn("imessage-cursor-start-deferred", { cause: error });
      }
      cancelTimer = clock.every(config.pollIntervalMs, tick);
      logger.info("imessage-channel-start", { dbPath: config.dbPath, rowId: position });
      return Promise.resolve();
    },

    async send(chatId: ChatId, text: string) {
      const route = routes.resolve(chatId, lookupChat);
      const program = command[0] ?? "osascript";
      logger.debug("imessage-send", { chatId, kind: route.kind, recipient: route.recipient });
      let result;
      try {
        result = await run(sendArgv(command, route, text), { timeoutMs: sendTimeoutMs });
      } catch (error) {
        throw sendStartFailure(program, route, error);
      }
      if (result.exitCode !== 0 || result.timedOut) throw sendFailure(program, route, result);
    },

    async stop() {
      if (state === "stopped") return;
      state = "stopped";
      cancelTimer?.();
      cancelTimer = undefined;
      await inFlight;
      reader?.close();
      reader = undefined;
      logger.info("imessage-channel-stop", { rowId: position });
    },

    whenIdle: async () => {
      await inFlight;
    },
    currentCursor,
  };
}
