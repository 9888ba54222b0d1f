import { describe, expect, it } from "vitest";
import type { AgentConversation, AgentEvent, AgentPort } from "../../../src/agent/port.js";
import { AsyncQueue } from "../../../src/agent/async-queue.js";
import { ManualClock } from "../../support/manual-clock.js";
import { asAgentSessionId, asChatId } from "../../../src/utils/ids.js";
import { Session, type TurnReply } from "../../../src/core/session.js";
import {
  costBaseline,
  turnCostUsd,
  type CostReading,
  type TurnCostReport,
} from "../../../src/core/turn-cost.js";
import { createLogger } from "../../../src/logging/logger.js";

function report(overrides: Partial<TurnCostReport>): TurnCostReport {
  return {
    totalUsd: 0,
    totalTokens: null,
    turnTokens: null,
    resumed: false,
    previous: null,
    ...overrides,
  };
}

describe("turnCostUsd", () => {
  it("takes a later turn of the same process as the difference of the running totals", () => {
    // Figures the SDK reported for three turns of one process (CLI 2.1, stand-in model).
    const first = { totalUsd: 0.001376, totalTokens: 1_390 };
    const second = { totalUsd: 0.002892, totalTokens: 2_800 };
    expect(turnCostUsd(report({ ...second, previous: first }), [])).toBe(0.001516);
    expect(turnCostUsd(report({ totalUsd: 0.0047279999999999996, previous: second }), [])).toBe(
      0.001836,
    );
  });

  it("takes the first turn of a new session as its whole total", () => {
    expect(
      turnCostUsd(report({ totalUsd: 0.010412, totalTokens: 2_555, turnTokens: 2_555 }), []),
    ).toBe(0.010412);
    // Even without token figures: a new session starts from nothing.
    expect(turnCostUsd(report({ totalUsd: 0.5 }), [{ totalUsd: 9, totalTokens: 9 }])).toBe(0.5);
  });

  it("measures a resumed process's first turn from the earlier turn whose total it carried over", () => {
    // Process 1 ended cleanly after two turns (0.020952, 5,146 tokens); process 2 ran one turn
    // and was killed, so process 3 starts again from process 1's figures.
    const earlier: CostReading[] = [
      { totalUsd: 0.031812, totalTokens: 7_781 }, // process 2's turn, newest first
      { totalUsd: 0.020952, totalTokens: 5_146 },
      { totalUsd: 0.010412, totalTokens: 2_555 },
    ];
    const afterKill = report({
      totalUsd: 0.032012,
      totalTokens: 7_827,
      turnTokens: 2_681,
      resumed: true,
    });
    expect(turnCostUsd(afterKill, earlier)).toBe(0.01106);
  });

  it("takes a resumed process's whole total when it carried nothing over", () => {
    expect(
      turnCostUsd(
        report({ totalUsd: 0.01, totalTokens: 2_000, turnTokens: 2_000, resumed: true }),
        [{ totalUsd: 0.3, totalTokens: 40_000 }],
      ),
    ).toBe(0.01);
  });

  it("says null, not a guess, when the figure it started from cannot be found", () => {
    const resumed = report({
      totalUsd: 0.05,
      totalTokens: 9_000,
      turnTokens: 2_000,
      resumed: true,
    });
    expect(turnCostUsd(resumed, [{ totalUsd: 0.03, totalTokens: 6_500 }])).toBeNull();
    expect(turnCostUsd(resumed, [])).toBeNull();
    expect(turnCostUsd(report({ totalUsd: 0.05, resumed: true }), [])).toBeNull();
    // A total below what it is measured from (a zeroed crash result) is no cost either.
    expect(
      turnCostUsd(report({ totalUsd: 0, previous: { totalUsd: 0.2, totalTokens: null } }), []),
    ).toBeNull();
    expect(turnCostUsd(report({ totalUsd: Number.NaN }), [])).toBeNull();
  });
});

describe("costBaseline", () => {
  it("keeps the higher reading, so a zeroed result does not reset the next turn's start", () => {
    const high = { totalUsd: 0.2, totalTokens: 100 };
    const zeroed = { totalUsd: 0, totalTokens: 0 };
    expect(costBaseline(null, zeroed)).toBe(zeroed);
    expect(costBaseline(high, zeroed)).toBe(high);
    const higher = { totalUsd: 0.3, totalTokens: 150 };
    expect(costBaseline(high, higher)).toBe(higher);
  });
});

describe("Session: what each turn reports about its cost", () => {
  /** An agent whose one conversation ends a turn with the figures the test pushes. */
  function scriptedAgent() {
    const events = new AsyncQueue<AgentEvent>();
    const conversation: AgentConversation = {
      push: () => undefined,
      events,
      isAlive: () => true,
      pid: 1,
      interrupt: () => Promise.resolve(),
      close: () => {
        events.end();
        return Promise.resolve();
      },
    };
    const agent: AgentPort = { start: () => conversation };
    const endTurn = (totalCostUsd: number, tokens?: { turn: number; total: number }) =>
      events.push({
        type: "turn-end",
        sessionId: asAgentSessionId("s-1"),
        inputIds: [],
        isError: false,
        totalCostUsd,
        ...(tokens ? { tokens } : {}),
        durationMs: 5,
      });
    return { agent, endTurn };
  }

  it("passes the running figures, the previous turn's, and whether the process resumed", async () => {
    const { agent, endTurn } = scriptedAgent();
    const turns: TurnReply[] = [];
    let ended: () => void = () => undefined;
    const session = new Session(
      { agent, clock: new ManualClock(0), logger: createLogger({ level: "silent" }) },
      {
        chatId: asChatId("+15551234567"),
        agentOptions: {
          cwd: "/tmp",
          sessionId: asAgentSessionId("s-1"),
          resume: true,
          allowedTools: [],
          disallowedTools: [],
          permissionMode: "dontAsk",
        },
      },
      {
        onSessionId: () => Promise.resolve(),
        onTurn: (reply) => {
          turns.push(reply);
          if (turns.length === 3) ended();
        },
        onExit: () => undefined,
      },
    );
    const allEnded = new Promise<void>((resolve) => (ended = resolve));
    session.start();
    endTurn(0.3, { turn: 100, total: 1_100 });
    endTurn(0, { turn: 0, total: 0 }); // a crashed turn's zeroed figures
    endTurn(0.35);
    await allEnded;
    await session.stop();

    expect(turns.map((turn) => turn.cost)).toEqual([
      { totalUsd: 0.3, totalTokens: 1_100, turnTokens: 100, resumed: true, previous: null },
      {
        totalUsd: 0,
        totalTokens: 0,
        turnTokens: 0,
        resumed: true,
        previous: { totalUsd: 0.3, totalTokens: 1_100 },
      },
      {
        totalUsd: 0.35,
        totalTokens: null,
        turnTokens: null,
        resumed: true,
        previous: { totalUsd: 0.3, totalTokens: 1_100 },
      },
    ]);
    expect(turns.map((turn) => turnCostUsd(turn.cost!, []))).toEqual([null, null, 0.05]);
  });
});
