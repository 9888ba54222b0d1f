/**
 * One contact of the load generator: it sends uniquely numbered messages (`c07-m0013`) as a
 * person texts, each after the reply to the one before; and now and then a burst, as a person
 * who adds to what they said before the answer came: a message with a slow turn, then a few more
 * sent while that turn runs (steering it), each without `wait`, acknowledged `202`, and then
 * asked for its reply. When the daemon dies under a request, or is not up yet, the client
 * repeats the same `message_id` until it gets its answer: dispatch's idempotency promise is what
 * makes that safe.
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

/**
 * Where a request goes: one daemon, or (a cluster) a choice made again for every attempt, so a
 * request cut by a node's death is sent again to a node that lives.
 */
export type EndpointChoice = DaemonEndpoint | (() => DaemonEndpoint);

export interface ContactClientOptions {
  /** `c07`: the prefix of its markers. */
  contact: string;
  chatId: string;
  endpoint: EndpointChoice;
  random: SeededRandom;
  /** Pause between a reply and the next message. */
  thinkMs: Range;
  /** Upper bound of the `[[delay N]]` each message asks of the stand-in, so kills land mid-turn. */
  replyDelayMaxMs: number;
  /** Bursts: how often a message opens one, and how many messages steer its turn. */
  steering: Steering;
  /** Asked before each new message; false ends the contact after its last reply. */
  keepSending(): boolean;
  /** Aborted at the run's deadline: an unanswered message is then given up as lost. */
  signal: AbortSignal;
}

export interface Steering {
  /** The chance, per message, that it opens a burst (0 never). */
  chance: number;
  /** How many messages are sent while the burst's first message's turn runs. */
  messages: Range;
  /** The `[[delay N]]` the burst's first message asks for, so the others land in its turn. */
  turnMs: Range;
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
  const { random, steering } = options;
  const done = (async () => {
    let index = 1;
    while (options.keepSending() && !options.signal.aborted) {
      run.waiting = true;
      if (steering.chance > 0 && random.next() < steering.chance) {
        const size = 1 + random.between(steering.messages.min, steering.messages.max);
        const markers = Array.from({ length: size }, (_unused, offset) =>
          markerOf(options.contact, index + offset),
        );
        run.messages.push(...(await sendBurst(options, markers)));
        index += size;
      } else {
        const marker = markerOf(options.contact, index);
        const delayMs = random.between(0, options.replyDelayMaxMs);
        const outcome = await sendUntilAnswered(options, post(options, marker, delayMs, true));
        run.messages.push({ marker, ...outcome });
        index += 1;
      }
      run.waiting = false;
      await pause(random.between(options.thinkMs.min, options.thinkMs.max), options.signal);
    }
    return run;
  })();
  return { run, done };
}

function post(
  options: Pick<ContactClientOptions, "contact" | "chatId">,
  marker: string,
  delayMs: number,
  wait: boolean,
): PostMessage {
  const delay = delayMs > 0 ? ` [[delay ${delayMs}]]` : "";
  return {
    chat_id: options.chatId,
    text: `${marker} from ${options.contact}${delay}`,
    message_id: marker,
    wait,
  };
}

/**
 * A burst: the first message asks for a slow turn, the rest follow one by one while it runs,
 * each without `wait` (acknowledged `202` once recorded, so they reach the session in this
 * order); then each is asked for its reply by its `message_id`. `attempts` is 1 plus the
 * requests beyond those two that a kill or a refusal cost.
 */
async function sendBurst(
  options: ContactClientOptions,
  markers: readonly string[],
): Promise<MessageOutcome[]> {
  const { random, steering } = options;
  const turnMs = random.between(steering.turnMs.min, steering.turnMs.max);
  const delayOf = (position: number) => (position === 0 ? turnMs : 0);
  const acknowledged: Omit<MessageOutcome, "marker">[] = [];
  for (const [position, marker] of markers.entries()) {
    const body = post(options, marker, delayOf(position), false);
    acknowledged.push(await sendUntilAnswered(options, body));
  }
  const outcomes: MessageOutcome[] = [];
  for (const [position, marker] of markers.entries()) {
    const first = acknowledged[position]!;
    if (first.error !== undefined) {
      outcomes.push({ marker, ...first });
      continue;
    }
    const answer = await sendUntilAnswered(options, post(options, marker, delayOf(position), true));
    outcomes.push({
      marker,
      ...answer,
      attempts: first.attempts + answer.attempts - 1,
      steered: position > 0,
    });
  }
  return outcomes;
}

export interface PostMessage {
  chat_id: string;
  text: string;
  message_id: string;
  wait: boolean;
}

/**
 * Posts the message until a `200` (with `wait`) or a `202` (without) ends it, repeating the same
 * `message_id` after a network failure (the daemon died or is starting), a `503` or a `429`
 * (after its `Retry-After`). Any other status is final: it is recorded as the message's error.
 * A `202` has no reply: `reply` is then `(acknowledged)`. With a choice of endpoints, each
 * attempt asks it where to go.
 */
export async function sendUntilAnswered(
  options: Pick<ContactClientOptions, "endpoint" | "random" | "signal">,
  body: PostMessage,
): Promise<Omit<MessageOutcome, "marker">> {
  const { random, signal } = options;
  let attempts = 0;
  let lastFailure = "never sent";
  while (!signal.aborted) {
    attempts += 1;
    let waitMs = random.between(RETRY_MS.min, RETRY_MS.max);
    const endpoint = typeof options.endpoint === "function" ? options.endpoint() : options.endpoint;
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
      if (response.status === 200 && body.wait) {
        const reply = (JSON.parse(text) as { reply: string | null }).reply;
        return { reply: reply ?? "(no reply text)", attempts };
      }
      if (response.status === 202 && !body.wait) return { reply: "(acknowledged)", attempts };
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
