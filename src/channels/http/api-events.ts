/**
 * `GET /v1/events`: a Server-Sent Events stream of replies to HTTP chats (`reply`, one per
 * recorded reply part, its outbox id as the event id) and of session state changes (`session`,
 * carrying the id of the last reply sent before it). Replies are read from the journal's outbox,
 * not from memory: a client that reconnects with `Last-Event-ID` gets every reply recorded after
 * that id, once, even across a restart of the daemon. A comment line every `heartbeatMs` keeps
 * proxies from closing a quiet stream; at most `maxStreams` are open at once.
 */
import type { Context } from "hono";
import { streamSSE, type SSEStreamingApi } from "hono/streaming";
import { DispatchError } from "../../utils/errors.js";
import type { ReplyEvent } from "../../store/journal.js";
import { replyPayload } from "./reply-webhook.js";

export interface ReplyEventLog {
  /** Reply parts recorded after `afterId`, oldest first, at most `limit`. */
  after(afterId: number, limit: number): Promise<ReplyEvent[]>;
  /** The latest reply part's id; 0 when there is none. */
  lastId(): Promise<number>;
}

export interface SessionStateView {
  chat_id: string;
  session_name: string;
  state: string;
}

/** The sessions as the dashboard's source gives them: the list, and every change of it. */
export interface SessionStates {
  listSessions(): SessionStateView[];
  /** `onEnd` once when no more changes will come (shutdown); returns an unsubscribe. */
  subscribe(listener: (sessions: SessionStateView[]) => void, onEnd?: () => void): () => void;
}

/** Tells whoever listens that something happened; listeners read what it was themselves. */
export interface Signal {
  notify(): void;
  listen(listener: () => void): () => void;
}

export function createSignal(): Signal {
  const listeners = new Set<() => void>();
  return {
    notify: () => {
      for (const listener of listeners) listener();
    },
    listen: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

export interface ApiEventsDeps {
  replies: ReplyEventLog;
  /** Fires after each recorded reply (`HttpReplyChannel`'s `onReplyRecorded`). */
  replyRecorded: Signal;
  sessions: SessionStates;
  /** Default 15 s. */
  heartbeatMs?: number;
  /** Open streams at most; one more gets `429 too_many_event_streams`. Default 32. */
  maxStreams?: number;
  /** Replies read from the journal at a time. Default 200. */
  batchSize?: number;
}

export interface ApiEvents {
  serve(c: Context): Promise<Response>;
  /** Streams open now. */
  open(): number;
}

export const DEFAULT_MAX_EVENT_STREAMS = 32;

export function createApiEvents(deps: ApiEventsDeps): ApiEvents {
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  const maxStreams = deps.maxStreams ?? DEFAULT_MAX_EVENT_STREAMS;
  const batchSize = deps.batchSize ?? 200;
  let open = 0;

  const serve = async (c: Context): Promise<Response> => {
    const resumeFrom = parseLastEventId(c.req.header("Last-Event-ID"));
    if (open >= maxStreams) {
      throw new DispatchError(
        "too_many_event_streams",
        `${maxStreams} event streams are open already, the most dispatch serves at once. Close ` +
          "one (or share one stream between your clients) and connect again.",
      );
    }
    open += 1;
    let cursor: number;
    try {
      // Without Last-Event-ID the stream starts now: replies recorded from here on.
      cursor = resumeFrom ?? (await deps.replies.lastId());
    } catch (error) {
      open -= 1;
      throw error;
    }
    return streamSSE(c, async (stream) => {
      try {
        await run(stream, cursor);
      } finally {
        open -= 1;
      }
    });
  };

  const run = async (stream: SSEStreamingApi, from: number): Promise<void> => {
    let cursor = from;
    let ended = false;
    let heartbeatDue = false;
    let wake: () => void = () => {};
    const poke = (): void => wake();
    const end = (): void => {
      ended = true;
      poke();
    };
    const known = new Map<string, string>();
    for (const session of deps.sessions.listSessions()) known.set(session.chat_id, session.state);
    const changes: SessionStateView[] = [];
    const unsubscribe = deps.sessions.subscribe((sessions) => {
      for (const session of sessions) {
        if (known.get(session.chat_id) === session.state) continue;
        known.set(session.chat_id, session.state);
        changes.push(session);
      }
      poke();
    }, end);
    const unlisten = deps.replyRecorded.listen(poke);
    const heartbeat = setInterval(() => {
      heartbeatDue = true;
      poke();
    }, heartbeatMs);
    stream.onAbort(end);
    try {
      while (!ended) {
        const woken = new Promise<void>((resolve) => (wake = resolve));
        for (;;) {
          const batch = await deps.replies.after(cursor, batchSize);
          for (const event of batch) {
            await stream.writeSSE({
              event: "reply",
              id: String(event.id),
              data: JSON.stringify(replyPayload(event)),
            });
            cursor = event.id;
          }
          if (batch.length < batchSize || ended) break;
        }
        while (changes.length > 0 && !ended) {
          const change = changes.shift()!;
          await stream.writeSSE({
            event: "session",
            id: String(cursor),
            data: JSON.stringify({
              chat_id: change.chat_id,
              session_name: change.session_name,
              state: change.state,
            }),
          });
        }
        if (heartbeatDue && !ended) {
          heartbeatDue = false;
          await stream.write(": heartbeat\n\n");
        }
        if (!ended) await woken;
      }
    } finally {
      clearInterval(heartbeat);
      unlisten();
      unsubscribe();
    }
  };

  return { serve, open: () => open };
}

/** The id of the last event a client got: a whole number; absent means "from now". */
function parseLastEventId(header: string | undefined): number | undefined {
  if (header === undefined || header.trim() === "") return undefined;
  const value = header.trim();
  if (!/^\d{1,15}$/.test(value)) {
    throw new DispatchError(
      "bad_request",
      `Last-Event-ID must be the id of an event this stream sent (a whole number), got ` +
        `${JSON.stringify(value.slice(0, 40))}. Leave it out to start from now.`,
    );
  }
  return Number(value);
}
