/**
 * One contact of the load generator: it sends uniquely numbered messages (`c07-m0013`) one at a
 * time, as a person texts, each after the reply to the one before. When the daemon dies under a
 * request, or is not up yet, the client repeats the same `message_id` until it gets the reply:
 * dispatch's idempotency promise is what makes that safe.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { MessageOutcome } from "./judge.js";
import type { SeededRandom } from "./seeded-random.js";

export interface Range {
  min: number;
  max: number;
}

export interface DaemonEndpoint {
  port: number;
  token: string;
}

export interface ContactClientOptions {
  /** `c07`: the prefix of its markers. */
  contact: string;
  chatId: string;
  endpoint: DaemonEndpoint;
  random: SeededRandom;
  /** Pause between a reply and the next message. */
  thinkMs: Range;
  /** Upper bound of the `[[delay N]]` each message asks of the stand-in, so kills land mid-turn. */
  replyDelayMaxMs: number;
  /** Asked before each new message; false ends the contact after its last reply. */
  keepSending(): boolean;
  /** Aborted at the run's deadline: an unanswered message is then given up as lost. */
  signal: AbortSignal;
}

export interface ContactRun {
  contact: string;
  messages: MessageOutcome[];
  /** True while a message of this contact waits for its reply. */
  waiting: boolean;
}

/** Longer than any turn of the stand-in; a request past it is abandoned and sent again. */
const REQUEST_TIMEOUT_MS = 120_000;
const RETRY_MS: Range = { min: 100, max: 400 };

export function markerOf(contact: string, index: number): string {
  return `${contact}-m${String(index).padStart(4, "0")}`;
}

/**
 * Starts one contact; it runs until `keepSending` says stop (or the deadline passes). `run` is
 * live: the crash loop reads it while the contact is still sending.
 */
export function startContact(options: ContactClientOptions): {
  run: ContactRun;
  done: Promise<ContactRun>;
} {
  const run: ContactRun = { contact: options.contact, messages: [], waiting: false };
  const done = (async () => {
    for (let index = 1; options.keepSending() && !options.signal.aborted; index += 1) {
      const marker = markerOf(options.contact, index);
      const delayMs = options.random.between(0, options.replyDelayMaxMs);
      const text = `${marker} from ${options.contact}${delayMs > 0 ? ` [[delay ${delayMs}]]` : ""}`;
      run.waiting = true;
      const outcome = await sendUntilAnswered(options, {
        chat_id: options.chatId,
        text,
        message_id: marker,
        wait: true,
      });
      run.waiting = false;
      run.messages.push({ marker, ...outcome });
      await pause(options.random.between(options.thinkMs.min, options.thinkMs.max), options.signal);
    }
    return run;
  })();
  return { run, done };
}

export interface PostMessage {
  chat_id: string;
  text: string;
  message_id: string;
  wait: true;
}

/**
 * Posts the message until a `200` ends it, repeating the same `message_id` after a network
 * failure (the daemon died or is starting), a `503` or a `429` (after its `Retry-After`).
 * Any other status is final: it is recorded as the message's error.
 */
export async function sendUntilAnswered(
  options: Pick<ContactClientOptions, "endpoint" | "random" | "signal">,
  body: PostMessage,
): Promise<Omit<MessageOutcome, "marker">> {
  const { endpoint, random, signal } = options;
  let attempts = 0;
  let lastFailure = "never sent";
  while (!signal.aborted) {
    attempts += 1;
    let waitMs = random.between(RETRY_MS.min, RETRY_MS.max);
    try {
      const response = await fetch(`http://127.0.0.1:${endpoint.port}/v1/messages`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${endpoint.token}`,
          "content-type": "application/json",
        },
        body: JSON.stringify(body),
        signal: AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
      });
      const text = await response.text();
      if (response.status === 200) {
        const reply = (JSON.parse(text) as { reply: string | null }).reply;
        return { reply: reply ?? "(no reply text)", attempts };
      }
      lastFailure = `HTTP ${response.status}: ${text.slice(0, 200)}`;
      if (response.status === 429) {
        waitMs = Number(response.headers.get("retry-after") ?? "1") * 1000 + waitMs;
      } else if (response.status !== 503) {
        return { error: lastFailure, attempts };
      }
    } catch (error) {
      // The daemon died under the request, or is not listening yet: the same id again.
      lastFailure = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
    await pause(waitMs, signal);
  }
  return { error: `deadline passed; last attempt: ${lastFailure}`, attempts };
}

async function pause(ms: number, signal: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch(() => undefined);
}
