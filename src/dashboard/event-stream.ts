/**
 * One server-sent event stream of the dashboard: events written one at a time and in order, a
 * heartbeat, and an end when the page goes away, when `start` ends it, or when the daemon shuts
 * down (`untilEnd`). A page that reads too slowly for what is sent is cut off rather than
 * buffered without bound; it reconnects and resumes (`Last-Event-ID`).
 */
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";

export type SendEvent = (event: string, data: string, id?: string) => void;

export interface EventStreamOptions {
  heartbeatMs: number;
  /** Calls `end` once when no more events will come (shutdown); returns an unsubscribe. */
  untilEnd(end: () => void): () => void;
  /** Starts sending; returns what stops it. */
  start(send: SendEvent, end: () => void): () => void;
  /** Events written but not yet sent, at most, before the stream is cut. Default 5000. */
  maxPending?: number;
}

export function serveEventStream(c: Context, options: EventStreamOptions): Response {
  const maxPending = options.maxPending ?? 5_000;
  return streamSSE(c, async (stream) => {
    let writing: Promise<void> = Promise.resolve();
    let pending = 0;
    let finish: () => void = () => {};
    const ended = new Promise<void>((resolve) => (finish = resolve));
    const send: SendEvent = (event, data, id) => {
      if (pending >= maxPending) {
        finish();
        return;
      }
      pending += 1;
      writing = writing
        .then(() => stream.writeSSE({ event, data, ...(id === undefined ? {} : { id }) }))
        .then(
          () => void (pending -= 1),
          // A failed write: the page went away.
          () => finish(),
        );
    };
    const stopEnd = options.untilEnd(finish);
    const stop = options.start(send, finish);
    const heartbeat = setInterval(
      () => send("heartbeat", new Date().toISOString()),
      options.heartbeatMs,
    );
    stream.onAbort(finish);
    try {
      await ended;
    } finally {
      clearInterval(heartbeat);
      stop();
      stopEnd();
      await writing;
    }
  });
}
