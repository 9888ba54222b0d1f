/**
 * The pieces of a CLI transcript line that the dashboard and the replay's earlier-answer search
 * share: lines that are not objects are skipped, a prompt written as a string is one text block.
 */
import { describe, expect, it } from "vitest";
import {
  contentBlocks,
  parseTranscriptLine,
  recordOf,
  textOf,
} from "../../../src/agent/transcript-line.js";

describe("the transcript line", () => {
  it("is an object parsed from one line; a blank, broken or non-object line is none", () => {
    expect(parseTranscriptLine('{"type":"user","uuid":"u1"}')).toEqual({
      type: "user",
      uuid: "u1",
    });
    expect(parseTranscriptLine("   ")).toBeUndefined();
    expect(parseTranscriptLine('{"type":"user"')).toBeUndefined();
    expect(parseTranscriptLine("[1,2]")).toBeUndefined();
    expect(parseTranscriptLine("null")).toBeUndefined();
    expect(recordOf([])).toBeUndefined();
    expect(recordOf("text")).toBeUndefined();
  });

  it("takes a message's content as blocks, a string prompt as one text block", () => {
    expect(contentBlocks("hello")).toEqual([{ type: "text", text: "hello" }]);
    expect(
      contentBlocks([{ type: "text", text: "a" }, "stray", null, { type: "tool_use" }]),
    ).toEqual([{ type: "text", text: "a" }, { type: "tool_use" }]);
    expect(contentBlocks(undefined)).toEqual([]);
  });

  it("reads the text of a content's text blocks, one a line", () => {
    expect(textOf("hello")).toBe("hello");
    expect(
      textOf([
        { type: "text", text: "first" },
        { type: "tool_result", content: "not text" },
        { type: "text", text: "second" },
      ]),
    ).toBe("first\nsecond");
    expect(textOf(42)).toBe("");
  });
});
