import { describe, expect, it } from "vitest";
import { ManualClock } from "../support/manual-clock.js";
import { asChatId } from "../../src/utils/ids.js";
import type { TurnReply } from "../../src/core/session.js";
import { createMemoryLogger, type LogRecord } from "../support/memory-logger.js";
import { createRealManager, textFrom, waitUntil } from "../support/real-manager.js";
import { useStandInHome } from "../support/stand-in-home.js";

/**
 * Supervision through the real SDK and CLI: a stuck turn holds up no other chat and is ended by
 * the turn timeout; API overloads are ridden out by the CLI's own retries, and when they outlast
 * those, the message stays queued and is answered once the API recovers.
 */
const JOHN = "+15551234567";
const JANE = "+15559876543";
const ADA = "+15550001111";

/**
 * The CLI retries an overloaded API up to 10 times, waiting up to 32 s between tries; these
 * shrink the waits (its own settings, passed to every CLI child).
 */
const QUICK_RETRIES = {
  CLAUDE_CODE_OVERLOADED_RETRY_BASE_DELAY_MS: "10",
  CLAUDE_CODE_OVERLOADED_RETRY_MAX_DELAY_MS: "50",
};

const bed = useStandInHome();

async function managerFor(options: Partial<Parameters<typeof createRealManager>[0]> = {}) {
  const records: LogRecord[] = [];
  const replies: TurnReply[] = [];
  const real = await createRealManager({
    home: bed.home,
    modelUrl: bed.model.url,
    logger: createMemoryLogger(records),
    onReply: (reply) => replies.push(reply),
    ...options,
  });
  bed.closers.push(() => real.close());
  const logged = (message: string) => records.filter((record) => record.message === message);
  return { ...real, records, replies, logged };
}

/** Model requests whose latest user text mentions `word`, by outcome. */
function requestsAbout(word: string): { failed: number; answered: number } {
  const about = bed.model
    .mainRequests()
    .filter((request) => request.userTexts.at(-1)?.includes(word) === true);
  const failed = about.filter((request) => request.reply.includes("Simulated HTTP")).length;
  return { failed, answered: about.length - failed };
}

describe("one sick session never slows the others", () => {
  it("answers other chats while one turn is stuck, then ends the stuck turn at the timeout", async () => {
    const clock = new ManualClock();
    const { manager, logged } = await managerFor({ clock, manager: { turnTimeoutMs: 60_000 } });
    const answered: string[] = [];
    const note = (who: string) => (reply: TurnReply) => {
      answered.push(who);
      return reply;
    };

    const stuck = manager
      .deliver(textFrom(JOHN, "John Doe", "[[delay 60000]] this will hang"))
      .then(note("john"));
    await bed.model.waitForRequests(
      1,
      (request) => request.userTexts.at(-1)?.includes("this will hang") === true,
    );
    const [jane, ada] = await Promise.all([
      manager.deliver(textFrom(JANE, "Jane Roe", "tell me about hazel")).then(note("jane")),
      manager.deliver(textFrom(ADA, "Ada Lovelace", "tell me about rowan")).then(note("ada")),
    ]);

    // Both answered while John's turn was still running.
    expect(jane.isError).toBe(false);
    expect(jane.text).toContain("hazel");
    expect(ada.isError).toBe(false);
    expect(ada.text).toContain("rowan");
    expect(answered.sort()).toEqual(["ada", "jane"]);
    expect(manager.status(asChatId(JOHN))!.state).toBe("busy");
    expect(logged("turn-timeout")).toHaveLength(0);

    clock.advance(60_000);
    const hung = await stuck;
    expect(hung.isError).toBe(true);
    expect(answered).toEqual(["ada", "jane", "john"]);
    expect(logged("turn-timeout")).toEqual([
      expect.objectContaining({
        level: "warn",
        fields: expect.objectContaining({ chatId: JOHN }) as unknown,
      }),
    ]);

    const next = await manager.deliver(textFrom(JOHN, "John Doe", "tell me about alder"));
    expect(next.isError).toBe(false);
    expect(next.text).toContain("alder");
  });
});

describe("API overload", () => {
  it("gives a normal reply when the CLI's own retries ride out a short overload", async () => {
    const { manager, logged, replies } = await managerFor({
      env: { ...QUICK_RETRIES, CLAUDE_CODE_MAX_RETRIES: "3" },
    });

    const reply = await manager.deliver(
      textFrom(JOHN, "John Doe", "[[error 529 x2]] tell me about larch"),
    );

    expect(reply.isError).toBe(false);
    expect(reply.text).toContain("larch");
    expect(requestsAbout("larch")).toEqual({ failed: 2, answered: 1 });
    expect(logged("turn-retry-scheduled")).toHaveLength(0);
    expect(replies).toHaveLength(1);
  });

  it("keeps a message queued when the overload outlasts the CLI's retries, and answers it once after", async () => {
    const clock = new ManualClock();
    const { manager, logged, replies } = await managerFor({
      clock,
      env: { ...QUICK_RETRIES, CLAUDE_CODE_MAX_RETRIES: "1" },
    });
    let settled = false;
    const delivered = manager
      .deliver(textFrom(JOHN, "John Doe", "[[error 529 x4]] tell me about spruce"))
      .finally(() => (settled = true));

    // Each turn: the first try and one retry of the CLI, both overloaded; then dispatch waits.
    for (let turn = 1; turn <= 2; turn += 1) {
      await waitUntil(
        () => logged("turn-retry-scheduled").length === turn,
        60_000,
        `failed turn ${turn}`,
      );
      expect(requestsAbout("spruce")).toEqual({ failed: 2 * turn, answered: 0 });
      expect(settled).toBe(false);
      expect(replies).toHaveLength(0);
      expect(manager.status(asChatId(JOHN))!.queued).toBe(1);
      clock.advance(5_000); // past the backoff: the message is pushed again
    }

    const reply = await delivered;
    expect(reply.isError).toBe(false);
    expect(reply.text).toContain("spruce");
    expect(requestsAbout("spruce")).toEqual({ failed: 4, answered: 1 });
    expect(replies).toEqual([expect.objectContaining({ messageIds: reply.messageIds })]);
    expect(manager.status(asChatId(JOHN))!.queued).toBe(0);
  });
});
