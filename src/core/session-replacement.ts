/**
 * Starting a chat afresh under a new session id, losing no message: when the agent no longer
 * knows the session ("unknown to the agent"), when a resume came back with less history than
 * dispatch's own copy of the transcript holds (rebuilt from that copy), and when the
 * conversation overflowed the context window. The old id goes into the entry's
 * `previous_session_ids`; a rebuilt or overflowed session is first told the recent exchanges
 * (`handoffFor`).
 *
 * Apart from the session manager, which owns how sessions open and close; this module decides
 * when a session must be replaced rather than resumed, and records the replacement.
 */
import type { ResumedHistory } from "../agent/port.js";
import type { Logger } from "../logging/logger.js";
import type { Registry, RegistryEntry } from "../store/registry.js";
import type { Clock } from "../utils/clock.js";
import { DispatchError, describeError } from "../utils/errors.js";
import { newAgentSessionId, type AgentSessionId, type ChatId } from "../utils/ids.js";
import type { MessageLedger } from "./message-ledger.js";
import { judgeResume } from "./resume-check.js";
import type { Session, TurnReply } from "./session.js";

/** Why a fresh session is told the old one's recent exchanges. */
export type HandoffReason = "context-overflow" | "history-missing";

/** A resume did not bring the session's history back; it is rebuilt from dispatch's copy. */
export const HISTORY_MISSING = "history-missing";

/** The agent found no transcript for the session id at all. */
export const UNKNOWN_TO_AGENT = "unknown to the agent";

/** What replacing needs of the sessions; the session manager provides it. */
export interface ReplaceableSessions {
  /** The chat's live session, if it has one. */
  get(chatId: ChatId): Session | undefined;
  /** The (re)open of the chat's session under way, if any. */
  opening(chatId: ChatId): Promise<Session> | undefined;
  shuttingDown(): boolean;
  /** Runs `work` to (re)open the chat's session unless that is already under way. */
  reopen(chatId: ChatId, work: () => Promise<Session>): Promise<Session>;
  stopLive(chatId: ChatId): Promise<boolean>;
  open(
    chatId: ChatId,
    entry: RegistryEntry,
    resume: boolean,
    handoff: string | undefined,
  ): Promise<Session>;
}

/** The ports the replacer uses; the session manager passes its own deps. */
export interface SessionReplacerDeps {
  registry: Registry;
  clock: Clock;
  logger: Logger;
  handoffFor?(sessionId: AgentSessionId, reason: HandoffReason): Promise<string | undefined>;
  copiedMessagesOf?(sessionId: AgentSessionId): Promise<number>;
  onSessionEvent?(event: { type: "replace"; chatId: ChatId; reason: string }): void;
}

export interface SessionReplacer {
  /**
   * Replaces the session with a fresh one told the recent exchanges from dispatch's copy when
   * the agent resumed with fewer messages than that copy holds. Resolves with whether it did;
   * never rejects.
   */
  rebuildIfMissing(
    chatId: ChatId,
    session: Session,
    sessionId: AgentSessionId,
    history: ResumedHistory,
  ): Promise<boolean>;
  /** The agent found no transcript for the session: rebuilt from ours when we hold one. */
  replaceUnknown(chatId: ChatId, session: Session): void;
  /**
   * A turn overflowed the context window. Each message gets one fresh session; one that
   * overflowed that too has its error as the answer. Returns the reply for the messages to
   * answer now, or undefined when all of them go to the fresh session.
   */
  afterContextOverflow(reply: TurnReply): TurnReply | undefined;
}

/** `ledger`: the manager's, where a message's failed attempts are counted. */
export function createSessionReplacer(
  deps: SessionReplacerDeps,
  sessions: ReplaceableSessions,
  ledger: MessageLedger,
): SessionReplacer {
  const { registry, clock } = deps;
  const log = deps.logger;

  async function rebuildIfMissing(
    chatId: ChatId,
    session: Session,
    sessionId: AgentSessionId,
    history: ResumedHistory,
  ): Promise<boolean> {
    let copied: number | undefined;
    try {
      copied = await deps.copiedMessagesOf?.(sessionId);
    } catch (error) {
      log.warn("session-resume-check-failed", { chatId, cause: describeError(error) });
    }
    if (copied === undefined) return false;
    const verdict = judgeResume({ copied, restored: history.messages });
    if (verdict.intact) {
      log.debug("session-resume-check", { chatId, sessionId, copied, ...history });
      return false;
    }
    log.warn("session-history-missing", {
      chatId,
      sessionId,
      copied,
      restored: history.messages,
      fix: "rebuilding the session from dispatch's copy of its transcript",
    });
    // After the open under way (this session's own) has finished, unless another took its place.
    const opening = sessions.opening(chatId) ?? Promise.resolve(session);
    void opening
      .catch(() => undefined)
      .then(() => {
        if (sessions.get(chatId) !== session || sessions.shuttingDown()) return;
        return replace(chatId, HISTORY_MISSING, sessionId);
      });
    return true;
  }

  /**
   * Starts the chat afresh under a new session id, keeping the old one in the entry's history
   * and losing no message. With `handoffFrom`, the fresh session is first told that session's
   * recent exchanges (`handoffFor`).
   */
  async function replace(
    chatId: ChatId,
    reason: string,
    handoffFrom?: AgentSessionId,
  ): Promise<void> {
    try {
      await sessions.reopen(chatId, async () => {
        await sessions.stopLive(chatId);
        const entry = registry.get(chatId);
        if (!entry) throw new DispatchError("not_found", `Chat ${chatId} was forgotten meanwhile`);
        const oldId = entry.session_id;
        const newId = newAgentSessionId();
        const replacedAt = new Date(clock.now()).toISOString();
        const updated = registry.update(chatId, {
          session_id: newId,
          previous_session_ids: [
            ...entry.previous_session_ids,
            ...(oldId ? [{ session_id: oldId, replaced_at: replacedAt, reason }] : []),
          ],
        });
        await registry.flush();
        log.warn(reason === UNKNOWN_TO_AGENT ? "session-resume-unknown" : "session-replace", {
          chatId,
          reason,
          oldSessionId: oldId,
          newSessionId: newId,
        });
        deps.onSessionEvent?.({ type: "replace", chatId, reason });
        const handoff = handoffFrom
          ? await deps.handoffFor?.(
              handoffFrom,
              reason === HISTORY_MISSING ? "history-missing" : "context-overflow",
            )
          : undefined;
        return sessions.open(chatId, updated, false, handoff);
      });
    } catch (error) {
      log.error("fresh-session-failed", { chatId, reason, cause: describeError(error) });
    }
  }

  return {
    rebuildIfMissing,
    replaceUnknown(chatId, session) {
      const sessionId = session.snapshot().agentSessionId;
      void rebuildIfMissing(chatId, session, sessionId, { messages: 0 }).then((rebuilt) =>
        rebuilt ? undefined : replace(chatId, UNKNOWN_TO_AGENT),
      );
    },
    afterContextOverflow(reply) {
      const retry = reply.messageIds.filter((id) => ledger.recordFailure(id) === 1);
      if (retry.length === 0) return reply;
      void replace(reply.chatId, "context overflow", reply.agentSessionId);
      const givenUp = reply.messageIds.filter((id) => !retry.includes(id));
      if (givenUp.length === 0) return undefined;
      return { ...reply, messageIds: givenUp };
    },
  };
}
