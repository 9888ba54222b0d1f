import { describe, expect, it } from "vitest";
import { shellCommandVerdict } from "../../../src/agent/shell-rules.js";

const allowed = (command: unknown, ...rules: string[]) =>
  shellCommandVerdict(command, rules).allowed;

describe("shellCommandVerdict", () => {
  it("allows what a prefix rule names, with or without arguments, and nothing that only starts alike", () => {
    for (const rule of ["git status:*", "git status *"]) {
      expect(allowed("git status", rule)).toBe(true);
      expect(allowed("  git status --short  ", rule)).toBe(true);
      expect(allowed("git statusx", rule)).toBe(false);
      expect(allowed("git stash", rule)).toBe(false);
    }
  });

  it("refuses the read-only commands the CLI would approve by itself (regression: id, git log, git show HEAD:.bashrc ran under Bash(git status:*))", () => {
    for (const command of ["id", "git log", "git show HEAD:.bashrc", "cat ~/.ssh/id_rsa"]) {
      expect(allowed(command, "git status:*")).toBe(false);
    }
  });

  it("allows an exact rule's command alone", () => {
    expect(allowed("git status", "git status")).toBe(true);
    expect(allowed("git status --short", "git status")).toBe(false);
  });

  it("matches a star anywhere as any run of characters, and \\* as a star", () => {
    expect(allowed("git log -5 --oneline", "git log * --oneline")).toBe(true);
    expect(allowed("git log --oneline", "git log * --oneline")).toBe(false);
    expect(allowed("echo *", "echo \\*")).toBe(true);
    expect(allowed("echo a", "echo \\*")).toBe(false);
  });

  it("refuses chaining, pipes, redirection, substitution and variables, even after an allowed prefix", () => {
    for (const command of [
      "git status; cat ~/.ssh/id_rsa",
      "git status && id",
      "git status | tee out",
      "git status > ~/out",
      "git status < /etc/passwd",
      "git status $(cat ~/.ssh/id_rsa)",
      "git status `id`",
      "git status $HOME",
      "git status \\\nid",
      "git status\nid",
      "git status & id",
      "git status\u0000id",
    ]) {
      const verdict = shellCommandVerdict(command, ["git status:*"]);
      expect(verdict, command).toMatchObject({ allowed: false });
    }
  });

  it("says what the chat may run when it refuses", () => {
    expect(shellCommandVerdict("id", ["git status:*", "ls"])).toEqual({
      allowed: false,
      reason: "This chat may run only these commands: Bash(git status:*), Bash(ls).",
    });
  });

  it("allows nothing under an empty rule", () => {
    expect(allowed("git status", "")).toBe(false);
  });

  it("refuses an empty or missing command", () => {
    expect(allowed("  ", "git status:*")).toBe(false);
    expect(allowed(undefined, "git status:*")).toBe(false);
  });
});
