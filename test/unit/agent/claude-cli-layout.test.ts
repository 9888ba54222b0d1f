import { mkdir, mkdtemp, realpath, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { projectFolderName } from "../../../src/dashboard/transcript-file.js";
import {
  claudeProjectFolders,
  claudeProjectKey,
  sessionFolderPaths,
} from "../../../src/agent/claude-cli-layout.js";

describe("claudeProjectKey", () => {
  it("replaces every character but letters and digits with '-', as the dashboard reads it", () => {
    const cwd = "/home/me/transcripts/john-doe";
    expect(claudeProjectKey(cwd)).toBe("-home-me-transcripts-john-doe");
    expect(claudeProjectKey(cwd)).toBe(projectFolderName(cwd));
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

describe("sessionFolderPaths and claudeProjectFolders", () => {
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
    expect(sessionFolderPaths(linked, "john-doe")).toEqual([
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
    expect(sessionFolderPaths(missing, "john-doe")).toEqual([path.join(missing, "john-doe")]);
  });
});
