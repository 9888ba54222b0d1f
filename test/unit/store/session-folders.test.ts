/**
 * Which session names are in use on disk. Regression (issue 12): a name whose folder or CLI
 * data outlived its registry entry (a forget, a hand-made folder) was given to the next chat of
 * that name, with the files and the CLI's memory in it.
 */
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { claudeProjectKey } from "../../../src/agent/claude-cli-layout.js";
import { createSessionFolders } from "../../../src/store/session-folders.js";

let root: string;
let transcripts: string;
let claudeDir: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), "dispatch-session-folders-"));
  transcripts = path.join(root, "transcripts");
  claudeDir = path.join(root, ".claude");
  await mkdir(transcripts);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("session folders: isInUse", () => {
  it("is false for a name with nothing on disk, and true once its folder is prepared", async () => {
    const folders = createSessionFolders(transcripts, { claudeDir });
    expect(folders.isInUse("john-doe")).toBe(false);
    await folders.prepare("john-doe");
    expect(folders.isInUse("john-doe")).toBe(true);
    expect(folders.isInUse("john-doe-2")).toBe(false);
  });

  it("counts a folder nobody registered, a file, and a dangling link of that name", async () => {
    const folders = createSessionFolders(transcripts);
    await mkdir(path.join(transcripts, "left-by-hand"));
    await writeFile(path.join(transcripts, "a-file"), "x");
    await symlink(path.join(root, "nowhere"), path.join(transcripts, "dangling"));
    expect(folders.isInUse("left-by-hand")).toBe(true);
    expect(folders.isInUse("a-file")).toBe(true);
    expect(folders.isInUse("dangling")).toBe(true);
  });

  it("counts the CLI's data for the folder when the folder itself is gone", async () => {
    const folders = createSessionFolders(transcripts, { claudeDir });
    const key = claudeProjectKey(path.join(transcripts, "jane-roe"));
    await mkdir(path.join(claudeDir, "projects", key, "memory"), { recursive: true });
    expect(folders.isInUse("jane-roe")).toBe(true);
    // Without the CLI's folder to look in, only the folder counts.
    expect(createSessionFolders(transcripts).isInUse("jane-roe")).toBe(false);
  });

  it("finds the CLI's data under the resolved path of a linked transcripts folder", async () => {
    const linked = path.join(root, "linked-transcripts");
    await symlink(transcripts, linked);
    const folders = createSessionFolders(linked, { claudeDir });
    const key = claudeProjectKey(path.join(await realpath(transcripts), "jane-roe"));
    await mkdir(path.join(claudeDir, "projects", key), { recursive: true });
    expect(folders.isInUse("jane-roe")).toBe(true);
  });

  it("counts an archived name", () => {
    const folders = createSessionFolders(transcripts, {
      isArchived: (name) => name === "forgotten",
    });
    expect(folders.isInUse("forgotten")).toBe(true);
    expect(folders.isInUse("remembered")).toBe(false);
  });
});
