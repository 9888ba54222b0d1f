import { describe, expect, it } from "vitest";
import {
  agentMessageIds,
  earlierAnswerIn,
  replayMessageId,
  turnsOf,
} from "../../../src/daemon/earlier-answer.js";

type Line = Record<string, unknown>;

const prompt = (uuid: string, text = "hello"): Line => ({
  type: "user",
  uuid,
  message: { role: "user", content: text },
});
const answer = (text: string, extra: Line = {}): Line => ({
  type: "assistant",
  uuid: `a-${text}`,
  message: { role: "assistant", model: "claude-test", content: [{ type: "text", text }] },
  ...extra,
});
const entries = (...lines: Line[]): Line[] => lines;

describe("earlierAnswerIn", () => {
  it("finds the model's answer to a message id, joining the turn's texts", () => {
    const turns = turnsOf(
      entries(
        prompt("id-1"),
        answer("first"),
        prompt("id-2"),
        { type: "attachment", uuid: "x" },
        answer("second"),
        answer("and more"),
      ),
    );
    expect(earlierAnswerIn(turns, ["id-2"])).toBe("second\n\nand more");
    expect(earlierAnswerIn(turns, ["id-0", "id-1"])).toBe("first");
    expect(earlierAnswerIn(turns, ["id-3"])).toBeUndefined();
  });

  it("takes no answer from the CLI's synthetic text after a cut-off prompt, but from the replay merged with it", () => {
    const synthetic = answer("No response requested.", {});
    (synthetic.message as Line).model = "<synthetic>";
    expect(earlierAnswerIn(turnsOf(entries(prompt("id-1"), synthetic)), ["id-1"])).toBeUndefined();
    const replayed = turnsOf(entries(prompt("id-1"), synthetic, prompt("id-1b"), answer("real")));
    expect(earlierAnswerIn(replayed, ["id-1"])).toBe("real");
  });

  it("takes no answer from a turn cut off after a tool call, or ended by an API error", () => {
    const toolCall: Line = {
      type: "assistant",
      message: {
        model: "claude-test",
        content: [
          { type: "text", text: "let me look" },
          { type: "tool_use", id: "t1", name: "Read", input: {} },
        ],
      },
    };
    expect(earlierAnswerIn(turnsOf(entries(prompt("id-1"), toolCall)), ["id-1"])).toBeUndefined();
    const apiError = answer("API Error: 500", { isApiErrorMessage: true });
    expect(earlierAnswerIn(turnsOf(entries(prompt("id-1"), apiError)), ["id-1"])).toBeUndefined();
  });

  it("skips meta prompts, sidechains and odd entries", () => {
    const turns = turnsOf([
      prompt("id-1"),
      { type: "user", isMeta: true, uuid: "meta", message: { content: "x" } },
      { ...answer("side"), isSidechain: true },
      answer("done"),
      "not an entry",
    ]);
    expect(turns).toHaveLength(1);
    expect(earlierAnswerIn(turns, ["id-1"])).toBe("done");
  });
});

describe("replayMessageId", () => {
  const uuid = "4faa566a-7c1a-4700-a674-30613aeb9bdb";

  it("is the journal's id before any replay, then a distinct, stable UUID per replay", () => {
    expect(replayMessageId(uuid, 0)).toBe(uuid);
    const ids = agentMessageIds(uuid, 3);
    expect(ids).toHaveLength(4);
    expect(new Set(ids).size).toBe(4);
    expect(agentMessageIds(uuid, 3)).toEqual(ids);
    for (const id of ids.slice(1)) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    }
  });
});
