/**
 * signal-cli's event stream (`GET /api/v1/events`, Server-Sent Events), kept open: each event's
 * data is handed to `onEvent` the moment it is whole, in order; a stream that ends, fails or goes
 * quiet is opened again with exponential backoff. signal-cli sends a keep-alive comment every
 * 15 s, so a stream silent for `staleAfterMs` is taken for dead (a half-open connection).
 */
import { createParser } from "eventsource-parser";
import type { Logger } from "../../logging/logger.js";
import type { Clock } from "../../utils/clock.js";
import { describeError } from "../../utils/errors.js";

export interface EventStreamOptions {
  /** The stream's full URL, `http://127.0.0.1:8080/api/v1/events?account=...`. */
  url: string;
  /** Called with each `receive` event's data, synchronously, in order. */
  onEvent(data: string): void;
  logger: Logger;
  clock: Clock;
  /** First reconnect delay; doubled per failure in a row, up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
  staleAfterMs?: number;
}

export interface EventStream {
  /** Whether a stream is open now. */
  connected(): boolean;
  /** Closes the stream; resolves once it is closed and no reconnect is pending. */
  stop(): Promise<void>;
}

export function openEventStream(options: EventStreamOptions): EventStream {
  const { clock, logger } = options;
  const backoffMs = options.backoffMs ?? 500;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const staleAfterMs = options.staleAfterMs ?? 60_000;
  let running = true;
  let open = false;
  let failures = 0;
  let controller: AbortController | undefined;
  let cancelWait: (() => void) | undefined;
  let wake: (() => void) | undefined;

  /** One connection, read to its end. Resolves whether it ended cleanly or not. */
  const readOnce = async (): Promise<void> => {
    controller = new AbortController();
    const current = controller;
    let cancelStale: (() => void) | undefined;
    const armStale = () => {
      cancelStale?.();
      cancelStale = clock.after(staleAfterMs, () => {
        logger.warn("signal-stream-stale", { quietMs: staleAfterMs });
        current.abort();
      });
    };
    // One parser per connection: an incomplete event at a cut is dropped with it, never read.
    const parser = createParser({
      onEvent: (event) => {
        failures = 0;
        if (event.event === undefined || event.event === "receive") options.onEvent(event.data);
      },
      onComment: () => {
        failures = 0; // signal-cli's keep-alive: the daemon is there
      },
    });
    try {
      armStale();
      const response = await fetch(options.url, {
        headers: { accept: "text/event-stream" },
        signal: current.signal,
      });
      if (!response.ok || !response.body) {
        throw new Error(`signal-cli answered HTTP ${response.status} to ${options.url}`);
      }
      open = true;
      logger.info("signal-stream-open", { url: options.url });
      const decoder = new TextDecoder();
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      for (;;) {
        const chunk = await reader.read();
        if (chunk.done) break;
        armStale();
        parser.feed(decoder.decode(chunk.value, { stream: true }));
      }
      if (running) logger.warn("signal-stream-end", { url: options.url });
    } catch (error) {
      if (running) {
        logger.warn("signal-stream-failed", { url: options.url, cause: describeError(error) });
      }
    } finally {
      cancelStale?.();
      open = false;
    }
  };

  const loop = async () => {
    while (running) {
      await readOnce();
      if (!running) break;
      failures += 1;
      const delayMs = Math.min(backoffMs * 2 ** Math.min(failures - 1, 16), maxBackoffMs);
      logger.info("signal-stream-reconnect", { delayMs, failures });
      await new Promise<void>((resolve) => {
        wake = resolve;
        cancelWait = clock.after(delayMs, resolve);
      });
      cancelWait = undefined;
      wake = undefined;
    }
  };
  const done = loop().catch((error: unknown) =>
    logger.error("signal-stream-crashed", { cause: describeError(error) }),
  );

  return {
    connected: () => open,
    async stop() {
      running = false;
      controller?.abort();
      cancelWait?.();
      wake?.();
      await done;
    },
  };
}
