import { describe, expect, it } from "vitest";
import { composeHandoff } from "../../../src/daemon/handoff.js";

describe("composeHandoff", () => {
  it("keeps user and assistant text, drops reminders, tools and other entries", () => {
    const handoff = composeHandoff([
      { type: "queue-operation" },
      { type: "user", message: { role: "user", content: "remember the word plum" } },
      {
        type: "assistant",
        message: {
          content: [
            { type: "thinking", thinking: "hmm" },
            { type: "text", text: "OK, plum it is." },
            { type: "tool_use", name: "Read", input: {} },
          ],
        },
      },
      {
        type: "user",
        message: {
          content: [{ type: "text", text: "<system-reminder>ignore me</system-reminder>" }],
        },
      },
    ])!;
    expect(handoff).toContain("[dispatch handoff]");
    expect(handoff).toContain("Contact: remember the word plum");
    expect(handoff).toContain("You: OK, plum it is.");
    expect(handoff).not.toContain("ignore me");
    expect(handoff).not.toContain("hmm");
  });

  it("keeps the most recent exchanges within its size bound", () => {
    const entries = Array.from({ length: 100 }, (_, index) => ({
      type: "user",
      message: { content: `message number ${index} ${"x".repeat(500)}` },
    }));
    const handoff = composeHandoff(entries)!;
    expect(handoff.length).toBeLessThan(9_000);
    expect(handoff).toContain("message number 99");
    expect(handoff).not.toContain("message number 0 ");
  });

  it("has nothing to say about an empty transcript", () => {
    expect(composeHandoff([])).toBeUndefined();
    expect(composeHandoff([{ type: "summary" }])).toBeUndefined();
  });
});
