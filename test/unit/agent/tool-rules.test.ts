import { describe, expect, it } from "vitest";
import { builtInToolsOf } from "../../../src/agent/claude-sdk-agent.js";
import { confineFileTools, grantsShell } from "../../../src/agent/tool-rules.js";

describe("confineFileTools", () => {
  it("scopes read and edit tools to the folder and keeps the rest", () => {
    expect(
      confineFileTools(
        ["Read", "Glob", "Grep", "Write", "Edit", "mcp__dispatch__send_message"],
        "/home/ada/transcripts/john-doe/",
      ),
    ).toEqual([
      "Read(//home/ada/transcripts/john-doe/**)",
      "Edit(//home/ada/transcripts/john-doe/**)",
      "mcp__dispatch__send_message",
    ]);
  });

  it("refuses a relative folder", () => {
    expect(() => confineFileTools(["Read"], "transcripts/john-doe")).toThrow(/absolute/);
  });
});

describe("grantsShell", () => {
  it("sees Bash with or without a rule", () => {
    expect(grantsShell(["Read", "Bash"])).toBe(true);
    expect(grantsShell(["Bash(git:*)"])).toBe(true);
    expect(grantsShell(["Read", "Grep"])).toBe(false);
  });
});

describe("builtInToolsOf", () => {
  it("keeps built-in tool names, without rules or MCP tools", () => {
    expect(builtInToolsOf(["Read", "Bash(git:*)", "Bash", "mcp__dispatch__send_message"])).toEqual([
      "Read",
      "Bash",
    ]);
  });
});
