import { describe, expect, it } from "vitest";
import { composeHandoff } from "../../../src/daemon/handoff.js";

const entries = [{ type: "user", message: { role: "user", content: "remember the word plum" } }];

describe("composeHandoff's reason", () => {
  it("says the old session overflowed the context window, by default", () => {
    expect(composeHandoff(entries)).toMatch(/grew too long for the model's context window/);
  });

  it("says the old session could not be resumed with its history", () => {
    const handoff = composeHandoff(entries, "history-missing")!;
    expect(handoff).toMatch(/could not be resumed with its history/);
    expect(handoff).not.toMatch(/context window/);
    expect(handoff).toContain("Contact: remember the word plum");
  });
});
