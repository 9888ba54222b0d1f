import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  claudeConfigDir,
  claudeProjectFolders,
  claudeProjectKey,
  readTranscriptFile,
  workingFolderPaths,
} from "../../../src/agent/claude-cli-layout.js";

describe("claudeProjectKey", () => {
  it("replaces every character but letters and digits with '-', as the dashboard reads it", () => {
    const cwd = "/home/me/transcripts/john-doe";
    expect(claudeProjectKey(cwd)).toBe("-home-me-transcripts-john-doe");
    expect(claudeProjectKey("/Users/José/t/a_b")).toBe("-Users-Jos--t-a-b");
  });

  it("cuts a key longer than 200 characters and tells long paths apart by a hash of the whole", () => {
    const long = `/${"a".repeat(250)}`;
    const key = claudeProjectKey(`${long}/john-doe`);
    expect(key).toMatch(/^-a{199}-[0-9a-z]+$/);
    expect(key.slice(0, 200)).toBe(`-${"a".repeat(199)}`);
    expect(claudeProjectKey(`${long}/jane-roe`)).not.toBe(key);
    expect(claudeProjectKey(`${long}/john-doe`)).toBe(key);
  });
});

describe("workingFolderPaths and claudeProjectFolders", () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), "dispatch-project-folder-"));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("names the folder as configured and as the CLI sees it through a linked transcripts folder", async () => {
    const real = path.join(root, "real-transcripts");
    const linked = path.join(root, "transcripts");
    await mkdir(real);
    await symlink(real, linked);
    const realRoot = await realpath(real);
    expect(workingFolderPaths(path.join(linked, "john-doe"))).toEqual([
      path.join(linked, "john-doe"),
      path.join(realRoot, "john-doe"),
    ]);
    expect(claudeProjectFolders("/c", linked, "john-doe").map((project) => project.folder)).toEqual(
      [
        path.join("/c", "projects", claudeProjectKey(path.join(linked, "john-doe"))),
        path.join("/c", "projects", claudeProjectKey(path.join(realRoot, "john-doe"))),
      ],
    );
  });

  it("names one folder when nothing is linked, or the transcripts folder does not exist yet", () => {
    const missing = path.join(root, "not-yet");
    expect(workingFolderPaths(path.join(missing, "john-doe"))).toEqual([
      path.join(missing, "john-doe"),
    ]);
  });
});

const SESSION = "a72db4cb-1c4b-4055-8529-86e1f3da285c";

describe("the transcript file", () => {
  let root: string;
  let claudeDir: string;

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), "dispatch-transcript-"));
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

  describe("claudeProjectKey, as the dashboard reads it", () => {
    it("replaces every character but letters and digits with -, as the CLI does", () => {
      expect(claudeProjectKey("/tmp/tmp.hlLQZKDnP4/transcripts/15551234567")).toBe(
        "-tmp-tmp-hlLQZKDnP4-transcripts-15551234567",
      );
      expect(claudeProjectKey("/Users/jo_doe/transcripts/john-doe")).toBe(
        "-Users-jo-doe-transcripts-john-doe",
      );
    });
  });

  describe("readTranscriptFile", () => {
    it("reads the transcript from the session folder's project folder", async () => {
      const cwd = path.join(root, "transcripts", "john-doe");
      await writeTranscript(claudeProjectKey(cwd), '{"type":"user"}\n');
      expect(await readTranscriptFile({ claudeDir, cwd, sessionId: SESSION })).toBe(
        '{"type":"user"}\n',
      );
    });

    it("finds it through the folder's real path, or in any project folder", async () => {
      const real = path.join(root, "real", "john-doe");
      await mkdir(real, { recursive: true });
      await symlink(path.join(root, "real"), path.join(root, "linked"));
      await writeTranscript(claudeProjectKey(real), "via real path\n");
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
});
