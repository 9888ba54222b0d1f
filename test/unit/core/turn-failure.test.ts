import { describe, expect, it } from "vitest";
import { classifyTurnFailure } from "../../../src/core/turn-failure.js";

describe("classifyTurnFailure", () => {
  it("finds API failures the CLI gave up on worth another try", () => {
    for (const errorText of [
      "API Error: 529 overloaded_error",
      "API Error: 429 rate_limit_error",
      "API Error: 503 Service Unavailable",
      "Request timed out",
      "read ECONNRESET",
    ]) {
      expect(classifyTurnFailure({ isError: true, errorText })).toBe("retriable");
    }
  });

  it("finds a conversation that overflowed the context window", () => {
    expect(classifyTurnFailure({ isError: true, errorText: "Prompt is too long" })).toBe(
      "context-overflow",
    );
    expect(
      classifyTurnFailure({ isError: true, errorText: "input exceeds the context window" }),
    ).toBe("context-overflow");
  });

  it("leaves other errors, and turns that went well, as they are", () => {
    expect(
      classifyTurnFailure({ isError: true, errorText: "API Error: 400 invalid_request_error" }),
    ).toBeUndefined();
    expect(classifyTurnFailure({ isError: true })).toBeUndefined();
    expect(classifyTurnFailure({ isError: false, errorText: "overloaded" })).toBeUndefined();
  });
});
