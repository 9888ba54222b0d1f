/**
 * Prewarmed spare agent processes: started before the chat they will serve is known, so a new
 * chat's first reply does not wait for a process to boot. This module holds the pool's logic and
 * knows nothing of the SDK; `sdk-spare.ts` passes in how a spare is prewarmed.
 *
 * What a spare can serve is fixed when it starts (the tools the model is shown, the in-process
 * MCP servers, the system prompt preset); a `profile` names one such set, and a spare serves only
 * conversations of its own profile. The pool keeps its spares for the profile of the most recent
 * new conversation (or `initialProfile` before the first): chats of one tier share a profile.
 */
import { describeError } from "../utils/errors.js";
import type { Logger } from "../logging/logger.js";
import type { AgentConversation, AgentEvent, AgentInput, ChatTools } from "./port.js";

/** What the pool needs from a parked spare. */
export interface ParkedProcess {
  /** Settles when the spare's process exits, claimed or not. */
  readonly exited: Promise<void>;
  /** Ends the process; resolves once it has exited. Never rejects. */
  close(): Promise<void>;
}

export interface SpareProfile {
  /** Equal keys mean a spare of one profile can serve a conversation of the other. */
  readonly key: string;
}

export interface SparePoolDeps<Profile extends SpareProfile, Spare extends ParkedProcess> {
  /** Most spares parked or starting at once (`spareProcesses`); 0 turns the pool off. */
  size: number;
  /**
   * Starts one spare process of `profile`; resolves once it is ready to be claimed. When
   * `signal` aborts (the pool is closing) it must end the process and settle promptly: a
   * shutdown waits for it.
   */
  prewarm(profile: Profile, signal: AbortSignal): Promise<Spare>;
  logger: Logger;
  /** The profile to prewarm for before any conversation has asked for one. */
  initialProfile?: Profile;
  /** First wait after a failed prewarm; it doubles with each failure in a row. Default 1 s. */
  retryInitialMs?: number;
  /** Longest wait between failed prewarms. Default 60 s. */
  retryMaxMs?: number;
}

export interface SparePool<Profile extends SpareProfile, Spare extends ParkedProcess> {
  /**
   * A parked spare of `profile`, now the caller's to claim or close; undefined when none is
   * ready. Either way the pool refills in the background, for `profile` from now on.
   */
  take(profile: Profile): Spare | undefined;
  /** Spares parked and ready to be taken. */
  readonly ready: number;
  /** Spares being prewarmed now (at most one at a time). */
  readonly starting: number;
  /**
   * Ends every parked spare, and aborts the one being prewarmed (a slow start must not hold up a
   * shutdown); resolves once they have exited.
   */
  close(): Promise<void>;
}

const DEFAULT_RETRY_INITIAL_MS = 1_000;
const DEFAULT_RETRY_MAX_MS = 60_000;

/**
 * Spares are prewarmed one at a time: each start costs about a second of CPU, which on a small
 * machine would otherwise compete with the conversation that just claimed one. A prewarm that
 * fails, or a parked spare that dies, is retried with exponential backoff; nothing here throws.
 */
export function createSparePool<Profile extends SpareProfile, Spare extends ParkedProcess>(
  deps: SparePoolDeps<Profile, Spare>,
): SparePool<Profile, Spare> {
  const log = deps.logger;
  const retryInitialMs = deps.retryInitialMs ?? DEFAULT_RETRY_INITIAL_MS;
  const retryMaxMs = deps.retryMaxMs ?? DEFAULT_RETRY_MAX_MS;
  let target: Profile | undefined = deps.initialProfile;
  const parked: { key: string; spare: Spare }[] = [];
  let prewarming: Promise<void> | undefined;
  /** Aborts the prewarm in flight, at close. */
  let prewarmAbort: AbortController | undefined;
  let failures = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;
  const closing = new Set<Promise<void>>();

  function discard(spare: Spare): void {
    const done = spare
      .close()
      .catch((error: unknown) => log.warn("spare-close-failed", { cause: describeError(error) }))
      .finally(() => closing.delete(done));
    closing.add(done);
  }

  function fill(): void {
    if (closed || !target || prewarming || retryTimer) return;
    if (parked.length >= deps.size) return;
    const profile = target;
    const abort = new AbortController();
    prewarmAbort = abort;
    prewarming = Promise.resolve()
      .then(() => deps.prewarm(profile, abort.signal))
      .then(
        (spare) => park(profile.key, spare),
        (error: unknown) => retryLater("spare prewarm failed", error),
      )
      .finally(() => {
        prewarming = undefined;
        prewarmAbort = undefined;
        fill();
      });
  }

  function park(key: string, spare: Spare): void {
    if (closed || key !== target?.key) {
      discard(spare);
      return;
    }
    failures = 0;
    const entry = { key, spare };
    parked.push(entry);
    log.debug("spare-ready", { ready: parked.length });
    spare.exited.then(
      () => {
        const index = parked.indexOf(entry);
        if (index === -1) return; // taken or discarded: no longer the pool's
        parked.splice(index, 1);
        // A spare that dies while parked counts as a failure, so a crash loop backs off.
        retryLater("spare exited while parked", undefined);
        discard(spare);
      },
      () => undefined,
    );
  }

  function retryLater(message: string, error: unknown): void {
    if (closed) return;
    failures += 1;
    const delayMs = Math.min(retryMaxMs, retryInitialMs * 2 ** (failures - 1));
    log.warn(message, {
      attempt: failures,
      retryInMs: delayMs,
      ...(error !== undefined ? { cause: describeError(error) } : {}),
    });
    if (retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      fill();
    }, delayMs);
    retryTimer.unref();
  }

  fill();
  return {
    take(profile) {
      if (closed || deps.size <= 0) return undefined;
      if (profile.key !== target?.key) {
        // The conversations that start now want another profile: make room for its spares.
        target = profile;
        for (const entry of parked.splice(0)) discard(entry.spare);
        log.debug("spare-retarget", {});
      }
      const entry = parked.shift();
      fill();
      return entry?.spare;
    },
    get ready() {
      return parked.length;
    },
    get starting() {
      return prewarming ? 1 : 0;
    },
    async close() {
      closed = true;
      clearTimeout(retryTimer);
      retryTimer = undefined;
      for (const entry of parked.splice(0)) discard(entry.spare);
      // A prewarm in flight is told to give up; should it finish anyway, it ends in `park`, which
      // discards its spare now that the pool is closed.
      prewarmAbort?.abort();
      await prewarming;
      await Promise.all([...closing]);
    },
  };
}

/**
 * A spare's chat tools: the spare's in-process MCP server is built before its chat is known, so
 * its handler forwards to whichever chat claims the spare, and fails until one has.
 */
export interface ChatToolsBinding extends ChatTools {
  bind(chatTools: ChatTools): void;
}

export function createChatToolsBinding(): ChatToolsBinding {
  let bound: ChatTools | undefined;
  return {
    bind(chatTools) {
      if (bound) throw new Error("This spare's chat tools are already bound to a chat.");
      bound = chatTools;
    },
    sendMessage(text) {
      if (!bound) {
        return Promise.reject(new Error("send_message is not bound to a chat yet."));
      }
      return bound.sendMessage(text);
    },
  };
}

/**
 * The input of a claimed spare: nothing is read from `input` until the claim is accepted, so a
 * refused claim leaves every message for the plain start that replaces it.
 */
export async function* afterClaim<T>(
  accepted: Promise<boolean>,
  input: AsyncIterable<T>,
): AsyncGenerator<T> {
  if (!(await accepted)) return;
  yield* input;
}

/** A conversation on a claimed spare, and whether the claim was accepted (never rejects). */
export interface ClaimedStart {
  /** Holds its input until the claim is accepted (see `afterClaim`). */
  conversation: AgentConversation;
  accepted: Promise<boolean>;
}

/**
 * The conversation of a claimed spare; when the claim is refused, a plain start from
 * `startPlain` instead, given every input pushed so far. The refused spare is closed.
 */
export function withFallback(
  claim: ClaimedStart,
  startPlain: () => AgentConversation,
): AgentConversation {
  let state: "pending" | "accepted" | "refused" = "pending";
  /** Pushed before the claim was accepted: what a plain start would need. */
  const held: AgentInput[] = [];
  let fallback: AgentConversation | undefined;
  let closed = false;
  const decided = claim.accepted.then((accepted) => {
    state = accepted ? "accepted" : "refused";
    if (accepted) held.length = 0;
    return accepted;
  });
  const active = () => fallback ?? claim.conversation;

  async function* events(): AsyncGenerator<AgentEvent> {
    if (await decided) {
      yield* claim.conversation.events;
      return;
    }
    if (closed) return;
    void claim.conversation.close().catch(() => undefined);
    fallback = startPlain();
    for (const message of held.splice(0)) fallback.push(message);
    yield* fallback.events;
  }

  return {
    events: events(),
    push(message) {
      if (fallback) return fallback.push(message);
      if (state !== "accepted") held.push(message);
      if (state !== "refused") claim.conversation.push(message);
    },
    isAlive: () => active().isAlive(),
    get pid() {
      return active().pid;
    },
    interrupt: () => active().interrupt(),
    async close() {
      closed = true;
      await active().close();
    },
  };
}
