import { describe, expect, it } from "vitest";
import { builtInToolsOf } from "../../../src/agent/sdk-options.js";
import {
  confineFileTools,
  grantsUnrestrictedShell,
  narrowShellRules,
} from "../../../src/agent/tool-rules.js";

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

describe("grantsUnrestrictedShell", () => {
  it("sees Bash and Bash(*) only", () => {
    expect(grantsUnrestrictedShell(["Read", "Bash"])).toBe(true);
    expect(grantsUnrestrictedShell(["Bash( * )"])).toBe(true);
    expect(grantsUnrestrictedShell(["Read", "Grep"])).toBe(false);
  });

  it("does not take a narrow rule for a shell (regression: Bash(git status:*) lifted the folder limit)", () => {
    expect(grantsUnrestrictedShell(["Read", "Bash(git status:*)"])).toBe(false);
  });
});

describe("narrowShellRules", () => {
  it("lists the patterns of narrow Bash rules, none when the shell is unrestricted", () => {
    expect(narrowShellRules(["Read", "Bash(git status:*)", "Bash(ls)", "Bash(ls)"])).toEqual([
      "git status:*",
      "ls",
    ]);
    expect(narrowShellRules(["Bash(git status:*)", "Bash"])).toEqual([]);
    expect(narrowShellRules(["Read", "Grep"])).toEqual([]);
    // An empty rule allows nothing, but still puts the tier's shell under the guard.
    expect(narrowShellRules(["Bash()"])).toEqual([""]);
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
