import { describe, expect, it } from "vitest";
import { asAgentSessionId, asChatId } from "../../../src/utils/ids.js";
import type { TurnReply } from "../../../src/core/session.js";
import { replyAfterLimit, TURN_LIMIT_NOTICES } from "../../../src/core/turn-limit.js";

const turn: TurnReply = {
  chatId: asChatId("+15551234567"),
  agentSessionId: asAgentSessionId("0b6a4f7e-3c1d-4e55-9a8b-2f1e0d9c8b7a"),
  messageIds: ["m1"],
  text: "",
  isError: true,
  errorText: "Reached maximum number of turns (10)",
  limit: "turns",
  totalCostUsd: 0.2,
  durationMs: 900,
};

describe("replyAfterLimit", () => {
  it("tells the contact the turn stopped, after whatever it wrote, as an answer and not an error", () => {
    expect(replyAfterLimit(turn)).toEqual({
      ...turn,
      errorText: undefined,
      text: TURN_LIMIT_NOTICES.turns,
      isError: false,
    });
    const spoke = replyAfterLimit({ ...turn, text: "Looking.", limit: "spend" });
    expect(spoke.text).toBe(`Looking.\n\n${TURN_LIMIT_NOTICES.spend}`);
    expect(spoke).not.toHaveProperty("errorText");
  });

  it("leaves a turn without a limit as it is", () => {
    const { limit: _limit, ...failed } = turn;
    expect(replyAfterLimit(failed)).toBe(failed);
  });
});
