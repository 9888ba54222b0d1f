import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  claudeConfigDir,
  projectFolderName,
  readTranscriptFile,
} from "../../../src/dashboard/transcript-file.js";

const SESSION = "a72db4cb-1c4b-4055-8529-86e1f3da285c";
let root: string;
let claudeDir: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "dispatch-transcript-"));
  claudeDir = path.join(root, ".claude");
  await mkdir(path.join(claudeDir, "projects"), { recursive: true });
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function writeTranscript(folder: string, text: string): Promise<void> {
  await mkdir(path.join(claudeDir, "projects", folder), { recursive: true });
  await writeFile(path.join(claudeDir, "projects", folder, `${SESSION}.jsonl`), text);
}

describe("projectFolderName", () => {
  it("replaces every character but letters and digits with -, as the CLI does", () => {
    expect(projectFolderName("/tmp/tmp.hlLQZKDnP4/transcripts/15551234567")).toBe(
      "-tmp-tmp-hlLQZKDnP4-transcripts-15551234567",
    );
    expect(projectFolderName("/Users/jo_doe/transcripts/john-doe")).toBe(
      "-Users-jo-doe-transcripts-john-doe",
    );
  });
});

describe("readTranscriptFile", () => {
  it("reads the transcript from the session folder's project folder", async () => {
    const cwd = path.join(root, "transcripts", "john-doe");
    await writeTranscript(projectFolderName(cwd), '{"type":"user"}\n');
    expect(await readTranscriptFile({ claudeDir, cwd, sessionId: SESSION })).toBe(
      '{"type":"user"}\n',
    );
  });

  it("finds it through the folder's real path, or in any project folder", async () => {
    const real = path.join(root, "real", "john-doe");
    await mkdir(real, { recursive: true });
    await symlink(path.join(root, "real"), path.join(root, "linked"));
    await writeTranscript(projectFolderName(real), "via real path\n");
    expect(
      await readTranscriptFile({
        claudeDir,
        cwd: path.join(root, "linked", "john-doe"),
        sessionId: SESSION,
      }),
    ).toBe("via real path\n");

    await rm(path.join(claudeDir, "projects"), { recursive: true });
    await writeTranscript("-a-shortened-name-1234abcd", "elsewhere\n");
    expect(
      await readTranscriptFile({ claudeDir, cwd: "/nowhere/john-doe", sessionId: SESSION }),
    ).toBe("elsewhere\n");
  });

  it("is undefined when there is no transcript, and for a session id that is not an id", async () => {
    expect(
      await readTranscriptFile({ claudeDir, cwd: "/x/y", sessionId: SESSION }),
    ).toBeUndefined();
    await writeTranscript("-x-y", "secret\n");
    await writeFile(path.join(claudeDir, "projects", "outside.jsonl"), "outside\n");
    expect(
      await readTranscriptFile({ claudeDir, cwd: "/x/y", sessionId: "../outside" }),
    ).toBeUndefined();
    expect(await readTranscriptFile({ claudeDir, cwd: "/x/y", sessionId: "" })).toBeUndefined();
    expect(
      await readTranscriptFile({
        claudeDir: path.join(root, "missing"),
        cwd: "/x/y",
        sessionId: SESSION,
      }),
    ).toBeUndefined();
  });

  it("reads a transcript too large from its end, starting at a whole line", async () => {
    await writeTranscript("-x-y", "first line\nsecond line\nthird line\n");
    expect(await readTranscriptFile({ claudeDir, cwd: "/x/y", sessionId: SESSION }, 16)).toBe(
      "third line\n",
    );
  });
});

describe("claudeConfigDir", () => {
  it("is CLAUDE_CONFIG_DIR when set, else .claude in HOME", () => {
    expect(claudeConfigDir({ CLAUDE_CONFIG_DIR: "/opt/claude" }, "/home/u")).toBe("/opt/claude");
    expect(claudeConfigDir({ HOME: "/home/agent" }, "/home/u")).toBe("/home/agent/.claude");
    expect(claudeConfigDir({ CLAUDE_CONFIG_DIR: " " }, "/home/u")).toBe("/home/u/.claude");
  });
});
