import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AgentConversation, AgentEvent, AgentInput } from "../../../src/agent/port.js";
import {
  afterClaim,
  createChatToolsBinding,
  createSparePool,
  withFallback,
  type SparePoolDeps,
  type SpareProfile,
} from "../../../src/agent/spare-processes.js";
import { AsyncQueue } from "../../../src/agent/async-queue.js";
import type { Logger } from "../../../src/logging/logger.js";
import { deferred, type Deferred } from "../../support/deferred.js";

/** A parked process that exits when told to or when closed. */
class FakeSpare {
  private readonly exit = deferred<void>();
  readonly exited = this.exit.promise;
  closed = false;
  constructor(
    readonly id: number,
    readonly profile: string,
  ) {}
  die(): void {
    this.exit.resolve();
  }
  close(): Promise<void> {
    this.closed = true;
    this.exit.resolve();
    return Promise.resolve();
  }
}

/** Records log lines as `level message`. */
function recordingLogger(lines: string[] = []): Logger & { lines: string[] } {
  const write = (level: string) => (message: string) => void lines.push(`${level} ${message}`);
  const logger: Logger & { lines: string[] } = {
    lines,
    debug: write("debug"),
    info: write("info"),
    warn: write("warn"),
    error: write("error"),
    child: () => logger,
  };
  return logger;
}

const profile = (key: string): SpareProfile => ({ key });
const READ_ONLY = profile("read-only");
const ADMIN = profile("admin");

/**
 * A pool whose prewarms the test settles one by one: `pending` holds each started prewarm,
 * `spares` every spare handed to the pool.
 */
function poolWith(options: Partial<SparePoolDeps<SpareProfile, FakeSpare>> = {}) {
  const pending: { profile: SpareProfile; result: Deferred<FakeSpare>; signal: AbortSignal }[] = [];
  const spares: FakeSpare[] = [];
  const logger = recordingLogger();
  const pool = createSparePool<SpareProfile, FakeSpare>({
    size: 1,
    logger,
    initialProfile: READ_ONLY,
    prewarm(wanted, signal) {
      const result = deferred<FakeSpare>();
      pending.push({ profile: wanted, result, signal });
      return result.promise;
    },
    ...options,
  });
  /** Lets the newest pending prewarm succeed. */
  const succeed = async () => {
    const next = pending.shift();
    if (!next) throw new Error("no prewarm is pending");
    const spare = new FakeSpare(spares.length + 1, next.profile.key);
    spares.push(spare);
    next.result.resolve(spare);
    await settle();
    return spare;
  };
  const fail = async (error = new Error("spawn ENOENT")) => {
    const next = pending.shift();
    if (!next) throw new Error("no prewarm is pending");
    next.result.reject(error);
    await settle();
  };
  return { pool, pending, spares, logger, succeed, fail };
}

/** Lets queued promise callbacks run. */
async function settle(): Promise<void> {
  for (let index = 0; index < 10; index += 1) await Promise.resolve();
}

describe("the spare pool", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("prewarms up to its size, one process at a time", async () => {
    const { pool, pending, succeed } = poolWith({ size: 2 });
    await settle();
    expect(pending).toHaveLength(1);
    expect(pool.starting).toBe(1);
    await succeed();
    expect(pool.ready).toBe(1);
    expect(pending).toHaveLength(1);
    await succeed();
    expect(pool.ready).toBe(2);
    expect(pool.starting).toBe(0);
    expect(pending).toHaveLength(0);
  });

  it("hands out a parked spare and refills in the background", async () => {
    const { pool, pending, succeed } = poolWith();
    await settle();
    const first = await succeed();

    expect(pool.take(READ_ONLY)).toBe(first);
    expect(pool.ready).toBe(0);
    await settle();
    expect(pending).toHaveLength(1);
    const second = await succeed();
    expect(pool.take(READ_ONLY)).toBe(second);
  });

  it("answers undefined while no spare is ready, and never starts more than its size", async () => {
    const { pool, pending } = poolWith();
    await settle();
    expect(pool.take(READ_ONLY)).toBeUndefined();
    expect(pool.take(READ_ONLY)).toBeUndefined();
    await settle();
    expect(pending).toHaveLength(1);
  });

  it("waits for a first conversation when no initial profile is given", async () => {
    const { pool, pending } = poolWith({ initialProfile: undefined });
    await settle();
    expect(pending).toHaveLength(0);
    expect(pool.take(ADMIN)).toBeUndefined();
    await settle();
    expect(pending.map((start) => start.profile)).toEqual([ADMIN]);
  });

  it("does nothing with size 0", async () => {
    const { pool, pending } = poolWith({ size: 0 });
    await settle();
    expect(pool.take(READ_ONLY)).toBeUndefined();
    await settle();
    expect(pending).toHaveLength(0);
  });

  it("retries a failed prewarm with doubling backoff, up to a cap, without throwing", async () => {
    const { pool, pending, logger, fail, succeed } = poolWith({
      retryInitialMs: 1_000,
      retryMaxMs: 3_000,
    });
    await settle();
    await fail();
    expect(logger.lines).toContain("warn spare prewarm failed");
    expect(pending).toHaveLength(0);

    await vi.advanceTimersByTimeAsync(999);
    expect(pending).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(pending).toHaveLength(1);
    await fail();
    await vi.advanceTimersByTimeAsync(1_999);
    expect(pending).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    await fail();
    // Capped at 3 s, not 4 s.
    await vi.advanceTimersByTimeAsync(3_000);
    expect(pending).toHaveLength(1);
    await succeed();
    expect(pool.ready).toBe(1);

    // A success resets the backoff.
    pool.take(READ_ONLY);
    await settle();
    await fail();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(pending).toHaveLength(1);
  });

  it("replaces a parked spare that dies, after a backoff", async () => {
    const { pool, pending, logger, succeed } = poolWith();
    await settle();
    const spare = await succeed();

    spare.die();
    await settle();
    expect(pool.ready).toBe(0);
    expect(logger.lines).toContain("warn spare exited while parked");
    expect(pool.take(READ_ONLY)).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(pending).toHaveLength(1);
  });

  it("follows a new conversation's profile: closes the old spares, prewarms the new one", async () => {
    const { pool, pending, succeed } = poolWith({ size: 2 });
    await settle();
    const first = await succeed();
    // The second read-only prewarm is still running when an admin conversation starts.
    expect(pending).toHaveLength(1);

    expect(pool.take(ADMIN)).toBeUndefined();
    expect(first.closed).toBe(true);
    const late = await succeed();
    expect(late.profile).toBe(READ_ONLY.key);
    expect(late.closed).toBe(true);
    expect(pending.map((start) => start.profile)).toEqual([ADMIN]);
    const admin = await succeed();
    expect(pool.take(ADMIN)).toBe(admin);
  });

  it("closes its parked spares and the one being prewarmed, and starts no more", async () => {
    const { pool, pending, spares, succeed } = poolWith({ size: 2 });
    await settle();
    const parked = await succeed();
    expect(pending).toHaveLength(1);

    let closed = false;
    const closing = pool.close().then(() => {
      closed = true;
    });
    expect(parked.closed).toBe(true);
    await settle();
    expect(closed).toBe(false); // still waiting for the prewarm in flight
    const late = await succeed();
    await closing;
    expect(late.closed).toBe(true);
    expect(spares.every((spare) => spare.closed)).toBe(true);
    expect(pool.take(READ_ONLY)).toBeUndefined();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(pending).toHaveLength(0);
  });

  it("aborts the prewarm in flight at close and resolves once it has settled (bug: a SIGTERM waited for a slow spare start, 18 s)", async () => {
    const { pool, pending, fail } = poolWith();
    await settle();
    const inFlight = pending[0]!;
    expect(inFlight.signal.aborted).toBe(false);

    let closed = false;
    const closing = pool.close().then(() => {
      closed = true;
    });
    expect(inFlight.signal.aborted).toBe(true);
    await settle();
    expect(closed).toBe(false);
    // The adapter ends the process on abort, so its prewarm fails: close is done, nothing retried.
    await fail(new Error("the spare process was killed"));
    await closing;
    expect(closed).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(pending).toHaveLength(0);
  });

  it("cancels a pending retry at close", async () => {
    const { pool, pending, fail } = poolWith();
    await settle();
    await fail();
    await pool.close();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(pending).toHaveLength(0);
  });
});

describe("createChatToolsBinding", () => {
  it("fails until a chat claims the spare, then forwards to that chat only", async () => {
    const binding = createChatToolsBinding();
    await expect(binding.sendMessage("early")).rejects.toThrow(/not bound/);
    const sent: string[] = [];
    binding.bind({
      sendMessage: (text) => {
        sent.push(text);
        return Promise.resolve();
      },
    });
    await binding.sendMessage("hello");
    expect(sent).toEqual(["hello"]);
    expect(() => binding.bind({ sendMessage: () => Promise.resolve() })).toThrow(/already bound/);
  });
});

describe("afterClaim", () => {
  it("reads nothing from the input when the claim is refused", async () => {
    const input = new AsyncQueue<string>();
    input.push("first");
    const read: string[] = [];
    for await (const item of afterClaim(Promise.resolve(false), input)) read.push(item);
    expect(read).toEqual([]);
    expect(input.length).toBe(1);
    expect(input.isEnded).toBe(false);
  });

  it("passes the input on once the claim is accepted", async () => {
    const input = new AsyncQueue<string>();
    input.push("first");
    input.end();
    const read: string[] = [];
    for await (const item of afterClaim(Promise.resolve(true), input)) read.push(item);
    expect(read).toEqual(["first"]);
  });
});

/** A conversation that records pushes and replays scripted events. */
class FakeConversation implements AgentConversation {
  readonly pushed: string[] = [];
  closed = false;
  private readonly queue = new AsyncQueue<AgentEvent>();
  readonly events: AsyncIterable<AgentEvent> = this.queue;
  constructor(readonly pid: number) {}
  push(input: AgentInput): void {
    this.pushed.push(input.text);
  }
  emit(event: AgentEvent): void {
    this.queue.push(event);
  }
  isAlive(): boolean {
    return !this.closed;
  }
  interrupt(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    this.closed = true;
    this.queue.end();
    return Promise.resolve();
  }
}

const input = (text: string): AgentInput => ({ id: text, text });
const textEvent = (text: string): AgentEvent => ({ type: "text", text });

async function firstEvent(conversation: AgentConversation): Promise<AgentEvent | undefined> {
  for await (const event of conversation.events) return event;
  return undefined;
}

describe("withFallback", () => {
  it("runs on the claimed spare when the claim is accepted", async () => {
    const claimed = new FakeConversation(101);
    const startPlain = vi.fn(() => new FakeConversation(202));
    const conversation = withFallback(
      { conversation: claimed, accepted: Promise.resolve(true) },
      startPlain,
    );
    conversation.push(input("hello"));
    claimed.emit(textEvent("hi"));

    expect(await firstEvent(conversation)).toEqual(textEvent("hi"));
    expect(conversation.pid).toBe(101);
    expect(claimed.pushed).toEqual(["hello"]);
    expect(startPlain).not.toHaveBeenCalled();
  });

  it("starts plain with every message pushed so far when the claim is refused", async () => {
    const claimed = new FakeConversation(101);
    const plain = new FakeConversation(202);
    const answer = deferred<boolean>();
    const conversation = withFallback(
      { conversation: claimed, accepted: answer.promise },
      () => plain,
    );
    conversation.push(input("one"));
    conversation.push(input("two"));
    expect(conversation.pid).toBe(101);

    const first = firstEvent(conversation);
    answer.resolve(false);
    await settle();
    conversation.push(input("three"));
    plain.emit(textEvent("from plain"));

    expect(await first).toEqual(textEvent("from plain"));
    expect(plain.pushed).toEqual(["one", "two", "three"]);
    expect(claimed.closed).toBe(true);
    expect(conversation.pid).toBe(202);
  });

  it("does not start plain when closed before a refused claim was answered", async () => {
    const claimed = new FakeConversation(101);
    const startPlain = vi.fn(() => new FakeConversation(202));
    const answer = deferred<boolean>();
    const conversation = withFallback(
      { conversation: claimed, accepted: answer.promise },
      startPlain,
    );
    const first = firstEvent(conversation);
    await conversation.close();
    answer.resolve(false);

    expect(await first).toBeUndefined();
    expect(claimed.closed).toBe(true);
    expect(startPlain).not.toHaveBeenCalled();
  });
});
