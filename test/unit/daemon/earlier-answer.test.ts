import { describe, expect, it } from "vitest";
import {
  agentMessageIds,
  replayGroups,
  replayMessageId,
  sightingIn,
  turnsOf,
  type MessageIdentity,
  type Sighting,
} from "../../../src/daemon/earlier-answer.js";
import { wrapInboundMessage } from "../../../src/identity/wrap-message.js";

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
const toolResult: Line = {
  type: "user",
  uuid: "tool-result",
  message: { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: "x" }] },
};
/** A message the CLI took in during a tool call, as it records it. */
const queued = (sourceUuid: string, prompt: string): Line => ({
  type: "attachment",
  uuid: `q-${sourceUuid}`,
  attachment: { type: "queued_command", prompt, source_uuid: sourceUuid, commandMode: "prompt" },
});
const entries = (...lines: Line[]): Line[] => lines;

/** A wrapped message with a fixed nonce, as dispatch hands it over. */
function wrapped(text: string, nonce: string): string {
  return wrapInboundMessage(
    {
      text,
      channel: "http",
      receivedAt: new Date("2026-02-07T14:30:00.000Z"),
      sender: { name: "John Doe", handle: "+15551234567", tier: "favorite" },
    },
    { nonce },
  );
}
const NONCES = ["a", "b", "c", "d"].map((letter) => letter.repeat(32));
const byNonce = (index: number): MessageIdentity => ({
  envelopeNonce: NONCES[index]!,
  messageIds: [],
});
const byId = (...messageIds: string[]): MessageIdentity => ({ messageIds });

describe("sightingIn", () => {
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
    expect(sightingIn(turns, byId("id-2"))).toEqual({
      state: "answered",
      text: "second\n\nand more",
      turn: 1,
    });
    expect(sightingIn(turns, byId("id-0", "id-1"))).toEqual({
      state: "answered",
      text: "first",
      turn: 0,
    });
    expect(sightingIn(turns, byId("id-3"))).toBeUndefined();
  });

  // Regression (issue 12): the CLI folds messages steered into a running turn into one entry
  // under the last one's id; only that one was found, and the others were handed over again.
  it("finds each message the CLI folded into one entry by its envelope, answered by that turn", () => {
    const folded = [1, 2, 3].map((index) => wrapped(`steered ${index}`, NONCES[index]!)).join("\n");
    const turns = turnsOf(
      entries(
        prompt("id-0", wrapped("first", NONCES[0]!)),
        answer("first answer"),
        prompt("id-3", folded),
        answer("one answer to three"),
      ),
    );
    for (const index of [1, 2, 3]) {
      expect(sightingIn(turns, byNonce(index))).toEqual({
        state: "answered",
        text: "one answer to three",
        turn: 1,
      });
    }
    expect(sightingIn(turns, byNonce(0))).toMatchObject({ state: "answered", turn: 0 });
  });

  it("finds a message taken in during a tool call, answered by the rest of that turn", () => {
    const turns = turnsOf(
      entries(
        prompt("id-1", wrapped("look it up", NONCES[0]!)),
        toolCall,
        toolResult,
        queued("id-2", wrapped("and this too", NONCES[1]!)),
        answer("both done"),
      ),
    );
    expect(sightingIn(turns, byNonce(1))).toEqual({
      state: "answered",
      text: "let me look\n\nboth done",
      turn: 0,
    });
    expect(sightingIn(turns, byId("id-2"))).toMatchObject({ state: "answered", turn: 0 });
  });

  it("tells a message in the context without an answer: cut off, failed, or after the last answer", () => {
    const folded = [1, 2].map((index) => wrapped(`steered ${index}`, NONCES[index]!)).join("\n");
    const cutOff = turnsOf(
      entries(prompt("id-0", wrapped("first", NONCES[0]!)), answer("done"), prompt("id-2", folded)),
    );
    expect(sightingIn(cutOff, byNonce(1))).toEqual({ state: "unanswered" });
    expect(sightingIn(cutOff, byNonce(2))).toEqual({ state: "unanswered" });
    expect(sightingIn(cutOff, byNonce(3))).toBeUndefined();

    const afterToolCall = turnsOf(
      entries(
        prompt("id-1", wrapped("look", NONCES[0]!)),
        toolCall,
        toolResult,
        queued("id-2", wrapped("more", NONCES[1]!)),
      ),
    );
    expect(sightingIn(afterToolCall, byNonce(0))).toEqual({ state: "unanswered" });
    expect(sightingIn(afterToolCall, byNonce(1))).toEqual({ state: "unanswered" });

    const apiError = answer("API Error: 500", { isApiErrorMessage: true });
    expect(sightingIn(turnsOf(entries(prompt("id-1"), apiError)), byId("id-1"))).toEqual({
      state: "unanswered",
    });
  });

  it("takes the answer of a prompt merged with a failed or cut-off one as the answer to both", () => {
    const apiError = answer("API Error: 529", { isApiErrorMessage: true });
    const retried = turnsOf(
      entries(
        prompt("id-1", wrapped("hi", NONCES[0]!)),
        apiError,
        prompt("id-1b", wrapped("hi", NONCES[0]!)),
        answer("hello"),
      ),
    );
    expect(sightingIn(retried, byNonce(0))).toEqual({ state: "answered", text: "hello", turn: 0 });

    const synthetic = answer("No response requested.");
    (synthetic.message as Line).model = "<synthetic>";
    const replayed = turnsOf(entries(prompt("id-1"), synthetic, prompt("id-1b"), answer("real")));
    expect(sightingIn(replayed, byId("id-1"))).toMatchObject({ state: "answered", text: "real" });
  });

  it("skips meta prompts, sidechains, tool results and odd entries", () => {
    const turns = turnsOf([
      prompt("id-1"),
      { type: "user", isMeta: true, uuid: "meta", message: { content: wrapped("x", NONCES[3]!) } },
      { ...answer("side"), isSidechain: true },
      answer("done"),
      "not an entry",
    ]);
    expect(turns).toHaveLength(1);
    expect(sightingIn(turns, byId("id-1"))).toMatchObject({ state: "answered", text: "done" });
    expect(sightingIn(turns, byNonce(3))).toBeUndefined();
  });
});

describe("replayGroups", () => {
  const answered = (turn: number): Sighting => ({
    state: "answered",
    text: `answer ${turn}`,
    agentSessionId: "s-1",
    turn,
  });
  const waiting: Sighting = { state: "unanswered", agentSessionId: "s-1" };

  it("runs messages answered by one turn, and those waiting in the context, together", () => {
    const rows = ["m1", "m2", "m3", "m4", "m5", "m6", "m7"];
    const groups = replayGroups(rows, [
      answered(0),
      answered(1),
      answered(1),
      waiting,
      waiting,
      undefined,
      undefined,
    ]);
    expect(groups.map((group) => group.rows)).toEqual([
      ["m1"],
      ["m2", "m3"],
      ["m4", "m5"],
      ["m6"],
      ["m7"],
    ]);
    expect(groups[2]!.sighting).toEqual(waiting);
  });

  it("keeps messages of different sessions apart", () => {
    const other: Sighting = { state: "unanswered", agentSessionId: "s-2" };
    expect(replayGroups(["m1", "m2"], [waiting, other])).toHaveLength(2);
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
