import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { countResumedMessages, messageUuidOf } from "../../../src/agent/resumed-transcript.js";

const SESSION = "3b9a18d2-71aa-4767-9ab0-dd73276402fa";
const CWD = "/home/me/transcripts/john-doe";

let configDir: string;

beforeEach(async () => {
  configDir = await mkdtemp(path.join(tmpdir(), "dispatch-claude-"));
});
afterEach(async () => {
  await rm(configDir, { recursive: true, force: true });
});

function line(type: string, uuid?: string): string {
  return JSON.stringify({ type, ...(uuid ? { uuid } : {}), message: { content: "hi" } });
}

async function writeTranscript(folder: string, lines: string[]): Promise<void> {
  const dir = path.join(configDir, "projects", folder);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, `${SESSION}.jsonl`), lines.join("\n") + "\n");
}

const count = (sessionId = SESSION) =>
  countResumedMessages({ claudeConfigDir: configDir, cwd: CWD, sessionId });

describe("countResumedMessages", () => {
  it("counts user and assistant messages once each, and nothing else", async () => {
    await writeTranscript("-home-me-transcripts-john-doe", [
      line("queue-operation"),
      line("user", "u1"),
      line("assistant", "a1"),
      line("assistant", "a1"), // the same message written twice
      line("summary", "s1"),
      line("user", "u2"),
      '{"type":"assistant","uuid":"a2","mess', // torn last line
    ]);
    expect(await count()).toBe(3);
  });

  it("finds the transcript in another project folder when the working folder's has none", async () => {
    await writeTranscript("-home-me-old-transcripts-john-doe", [line("user", "u1")]);
    expect(await count()).toBe(1);
  });

  it("prefers the working folder's transcript", async () => {
    await writeTranscript("-home-me-old-transcripts-john-doe", [line("user", "u1")]);
    await writeTranscript("-home-me-transcripts-john-doe", [
      line("user", "u1"),
      line("assistant", "a1"),
    ]);
    expect(await count()).toBe(2);
  });

  it("is 0 when there is no transcript, or no projects folder at all", async () => {
    expect(await count()).toBe(0);
    await writeTranscript("-elsewhere", [line("user", "u1")]);
    expect(await count("0f0f0f0f-0000-4000-8000-000000000000")).toBe(0);
  });

  it("never looks outside the projects folder for an odd session id", async () => {
    await writeTranscript("-home-me-transcripts-john-doe", [line("user", "u1")]);
    expect(await count(`../-home-me-transcripts-john-doe/${SESSION}`)).toBe(0);
  });
});

describe("messageUuidOf", () => {
  it("reads the uuid of user and assistant lines only", () => {
    expect(messageUuidOf(line("user", "u1"))).toBe("u1");
    expect(messageUuidOf(line("assistant", "a1"))).toBe("a1");
    expect(messageUuidOf(line("system", "s1"))).toBeUndefined();
    expect(messageUuidOf(line("user"))).toBeUndefined();
    expect(messageUuidOf('{"uuid": ')).toBeUndefined();
  });
});
