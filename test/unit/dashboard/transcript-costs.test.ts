import { describe, expect, it } from "vitest";
import type { TranscriptTurn } from "../../../src/dashboard/transcript.js";
import { withRecordedCosts } from "../../../src/dashboard/transcript-costs.js";

function turn(index: number, uuids: (string | null)[], cost: number | null = null): TranscriptTurn {
  return {
    index,
    started_at: null,
    ended_at: null,
    duration_ms: null,
    cost_usd: cost,
    tokens: null,
    model: null,
    inputs: uuids.map((uuid) => ({
      text: `message ${uuid}`,
      from: null,
      handle: null,
      channel: null,
      received_at: null,
      raw: null,
      at: null,
      uuid,
    })),
    steps: [],
    is_error: false,
  };
}

describe("withRecordedCosts", () => {
  it("puts a record's cost on the turn holding one of its messages, never by position", () => {
    const turns = [turn(1, ["a"]), turn(2, [null]), turn(3, ["c", "d"]), turn(4, ["e"])];
    const costed = withRecordedCosts(turns, [
      { messageUuids: ["d"], costUsd: 0.5 },
      { messageUuids: ["a"], costUsd: 0.25 },
      { messageUuids: ["not-in-this-transcript"], costUsd: 9 },
      { messageUuids: ["e"], costUsd: null },
    ]);
    expect(costed.map((entry) => entry.cost_usd)).toEqual([0.25, null, 0.5, null]);
    // The turns given are left as they were.
    expect(turns.map((entry) => entry.cost_usd)).toEqual([null, null, null, null]);
  });

  it("sums the records of a turn the transcript shows as one, unknown when any is unknown", () => {
    const costed = withRecordedCosts(
      [turn(1, ["a", "b"]), turn(2, ["c", "d"])],
      [
        { messageUuids: ["a"], costUsd: 0.25 },
        { messageUuids: ["b"], costUsd: 0.125 },
        { messageUuids: ["c"], costUsd: 0.25 },
        { messageUuids: ["d"], costUsd: null },
      ],
    );
    expect(costed.map((entry) => entry.cost_usd)).toEqual([0.375, null]);
  });

  it("keeps a cost the transcript itself carries", () => {
    const costed = withRecordedCosts(
      [turn(1, ["a"], 0.75)],
      [{ messageUuids: ["a"], costUsd: 0.1 }],
    );
    expect(costed[0]!.cost_usd).toBe(0.75);
  });
});
