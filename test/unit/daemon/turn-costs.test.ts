import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../support/manual-clock.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { asAgentSessionId, asChatId } from "../../../src/utils/ids.js";
import type { TurnReply } from "../../../src/core/session.js";
import type { TurnCostReport } from "../../../src/core/turn-cost.js";
import { createTurnCosts, type TurnCosts } from "../../../src/daemon/turn-costs.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import type { Journal } from "../../../src/store/journal.js";
import { openStateDatabase } from "../../../src/store/sqlite-database.js";
import { createSqliteJournal } from "../../../src/store/sqlite-journal.js";

const JOHN = asChatId("+15551234567");
const JANE = asChatId("+15559876543");

let folder: string;
let path: string;
let clock: ManualClock;
let journal: Journal;
let logger: ReturnType<typeof createMemoryLogger>;
let costs: TurnCosts;

async function open(): Promise<void> {
  journal = createSqliteJournal({ db: openStateDatabase({ path, logger }), clock });
  costs = createTurnCosts({ journal, clock, logger });
  await costs.load(); // as the daemon does at start
}

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-turn-costs-"));
  path = join(folder, "journal.db");
  clock = new ManualClock(Date.parse("2026-03-01T12:00:00.000Z"));
  logger = createMemoryLogger();
  await open();
});
afterEach(async () => {
  await journal.close();
  await rm(folder, { recursive: true, force: true });
});

function turn(
  chatId: typeof JOHN,
  sessionId: string,
  messageIds: string[],
  cost: Partial<TurnCostReport> | undefined,
): TurnReply {
  return {
    chatId,
    agentSessionId: asAgentSessionId(sessionId),
    messageIds,
    text: "reply",
    isError: false,
    totalCostUsd: cost?.totalUsd ?? 0,
    ...(cost
      ? {
          cost: {
            totalUsd: 0,
            totalTokens: null,
            turnTokens: null,
            resumed: false,
            previous: null,
            ...cost,
          },
        }
      : {}),
    durationMs: 1_500,
  };
}

describe("createTurnCosts", () => {
  it("records each turn's own cost, and the cost so far survives a restart", async () => {
    await costs.record(
      turn(JOHN, "s-1", ["u-1"], { totalUsd: 0.01, totalTokens: 1_000, turnTokens: 1_000 }),
    );
    clock.advance(60_000);
    await costs.record(
      turn(JOHN, "s-1", ["u-2", "u-3"], {
        totalUsd: 0.025,
        totalTokens: 2_200,
        turnTokens: 1_200,
        previous: { totalUsd: 0.01, totalTokens: 1_000 },
      }),
    );
    await costs.record(turn(JANE, "s-2", ["u-4"], { totalUsd: 0.5 }));
    expect(costs.costOf(["s-1"])).toEqual({ costUsd: 0.025, turns: 2, unknownTurns: 0 });

    await journal.close();
    await open();
    expect(costs.costOf(["s-1"])).toEqual({ costUsd: 0.025, turns: 2, unknownTurns: 0 });
    expect(costs.costOf(["s-1", "s-2", "s-unknown"]).costUsd).toBeCloseTo(0.525, 10);
    expect(await costs.recentTurns(JOHN, 10)).toEqual([
      {
        chatId: JOHN,
        sessionId: "s-1",
        messageUuids: ["u-2", "u-3"],
        endedAt: new Date(clock.now()),
        durationMs: 1_500,
        isError: false,
        totalCostUsd: 0.025,
        totalTokens: 2_200,
        costUsd: 0.015,
      },
      expect.objectContaining({ messageUuids: ["u-1"], costUsd: 0.01 }),
    ]);
    expect(await costs.recentTurns(JOHN, 1)).toHaveLength(1);
  });

  it("finds what a resumed process started from among the session's recorded turns", async () => {
    await costs.record(
      turn(JOHN, "s-1", ["u-1"], { totalUsd: 0.02, totalTokens: 5_000, turnTokens: 5_000 }),
    );
    await journal.close();
    await open(); // the daemon restarted; the agent resumes s-1 and carries its total over
    await costs.record(
      turn(JOHN, "s-1", ["u-2"], {
        totalUsd: 0.03,
        totalTokens: 7_500,
        turnTokens: 2_500,
        resumed: true,
      }),
    );
    // A resumed first turn whose start matches nothing recorded: unknown, counted apart.
    await costs.record(
      turn(JOHN, "s-1", ["u-3"], {
        totalUsd: 0.04,
        totalTokens: 9_999,
        turnTokens: 1_000,
        resumed: true,
      }),
    );
    expect((await costs.recentTurns(JOHN, 10)).map((record) => record.costUsd)).toEqual([
      null,
      0.01,
      0.02,
    ]);
    expect(costs.costOf(["s-1"])).toEqual({ costUsd: 0.03, turns: 3, unknownTurns: 1 });
  });

  it("records nothing for a reply of dispatch's own, which is no turn of the agent", async () => {
    await costs.record(turn(JOHN, "s-1", ["u-1"], undefined));
    expect(await costs.recentTurns(JOHN, 10)).toEqual([]);
    expect(costs.costOf(["s-1"])).toEqual({ costUsd: 0, turns: 0, unknownTurns: 0 });
  });

  it("logs a journal failure instead of throwing into the reply path", async () => {
    await journal.close();
    await expect(
      costs.record(turn(JOHN, "s-1", ["u-1"], { totalUsd: 0.01 })),
    ).resolves.toBeUndefined();
    expect(logger.records.map((record) => record.message)).toContain("turn-cost-record-failed");
    await open();
  });
});

describe("Journal: turns", () => {
  it("refuses a bad turn with a clear error and records nothing", async () => {
    const base = {
      chatId: JOHN,
      sessionId: "s-1",
      messageUuids: [],
      endedAt: new Date(clock.now()),
      durationMs: 10,
      isError: false,
      totalCostUsd: 0.1,
      totalTokens: null,
      costUsd: 0.1,
    };
    for (const bad of [
      { costUsd: -1 },
      { totalCostUsd: Number.NaN },
      { durationMs: -5 },
      { endedAt: new Date(Number.NaN) },
    ]) {
      let caught: unknown;
      try {
        await journal.recordTurn({ ...base, ...bad });
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(DispatchError);
      expect((caught as DispatchError).code).toBe("journal_invalid_turn");
      expect((caught as DispatchError).message).toMatch(
        /Cannot record a turn of chat \+15551234567/,
      );
    }
    expect(await journal.recentTurns(JOHN)).toEqual([]);
    await journal.recordTurn(base);
    expect(await journal.recentTurns(JOHN, { sessionId: "other" })).toEqual([]);
    expect(await journal.recentTurns(JOHN, { sessionId: "s-1" })).toHaveLength(1);
  });

  it("adds the turns table to a journal of schema version 1, keeping its messages", async () => {
    await journal.close();
    const old = new BetterSqlite3(path);
    // Today's schema less what versions 2 (turns), 4 (envelope_nonce), 5 (activity) and 6
    // (registry) added; 3 only adds an index with IF NOT EXISTS.
    old.exec(
      "DROP TABLE turns; DROP TABLE activity; DROP TABLE registry; DROP TABLE registry_import",
    );
    old.exec("ALTER TABLE inbound DROP COLUMN envelope_nonce");
    old.pragma("user_version = 1");
    old
      .prepare(
        `INSERT INTO inbound (uuid, channel, chat_id, text, received_at, status, created_at, updated_at)
         VALUES ('u-old', 'http', '+15551234567', 'hi', 1, 'received', 1, 1)`,
      )
      .run();
    old.close();
    await open();
    expect((await journal.pendingInbound()).map((row) => row.uuid)).toEqual(["u-old"]);
    await costs.record(turn(JOHN, "s-1", ["u-old"], { totalUsd: 0.01 }));
    expect(costs.costOf(["s-1"]).turns).toBe(1);
  });
});
