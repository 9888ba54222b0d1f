import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { hasClaudeCredentials } from "../../../src/daemon/credentials.js";

describe("hasClaudeCredentials", () => {
  it("finds a key or token in the environment, ignoring blank values", () => {
    expect(hasClaudeCredentials({ ANTHROPIC_API_KEY: "sk-ant-x" }, "/nowhere", "linux")).toBe(true);
    expect(hasClaudeCredentials({ CLAUDE_CODE_OAUTH_TOKEN: "t" }, "/nowhere", "linux")).toBe(true);
    expect(hasClaudeCredentials({ ANTHROPIC_API_KEY: "  " }, "/nowhere", "linux")).toBe(false);
    expect(hasClaudeCredentials({ CLAUDE_CODE_USE_BEDROCK: "1" }, "/nowhere", "linux")).toBe(true);
  });

  it("finds a claude login in ~/.claude on Linux", async () => {
    const home = await mkdtemp(path.join(tmpdir(), "dispatch-credentials-"));
    try {
      expect(hasClaudeCredentials({}, home, "linux")).toBe(false);
      await mkdir(path.join(home, ".claude"));
      await writeFile(path.join(home, ".claude", ".credentials.json"), "{}");
      expect(hasClaudeCredentials({}, home, "linux")).toBe(true);
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it("does not refuse on macOS, where a claude login lives in the Keychain", () => {
    expect(hasClaudeCredentials({}, "/nowhere", "darwin")).toBe(true);
  });
});
