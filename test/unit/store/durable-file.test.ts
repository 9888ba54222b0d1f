import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import writeFileAtomic from "write-file-atomic";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  copyFileDurable,
  errorCode,
  isTempFileOf,
  readFileIfExists,
  removeStaleTempFiles,
  writeFileDurable,
} from "../../../src/store/durable-file.js";

let folder: string;
beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-durable-"));
});
afterEach(async () => {
  await rm(folder, { recursive: true, force: true });
});

describe("writeFileDurable", () => {
  it("replaces the file's content, mode 0600, leaving no temp file behind", async () => {
    const path = join(folder, "sessions.json");
    await writeFile(path, "old", { mode: 0o644 });
    await writeFileDurable(path, "new\n");
    expect(await readFile(path, "utf8")).toBe("new\n");
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(folder)).toEqual(["sessions.json"]);
  });

  it("rejects when the folder does not exist, instead of swallowing the error", async () => {
    const path = join(folder, "missing", "sessions.json");
    const failure = await writeFileDurable(path, "x").catch((error: unknown) => error);
    expect(errorCode(failure)).toBe("ENOENT");
  });
});

describe("temp files", () => {
  it("recognises write-file-atomic's own temp names for the target, and nothing else", () => {
    const target = join(folder, "sessions.json");
    // The library's name generator: a regression guard against its naming changing under us.
    const generated = (
      writeFileAtomic as unknown as { _getTmpname(file: string): string }
    )._getTmpname(target);
    expect(isTempFileOf(target, basename(generated))).toBe(true);
    expect(isTempFileOf(target, "sessions.json.123456")).toBe(true);
    for (const name of [
      "sessions.json",
      "sessions.json.last-good",
      "sessions.json.last-good.123",
      "sessions.json.123.bak",
      "sessions.json.",
      "other.json.123",
      "sessions.json.corrupt-2026-01-01T00-00-00.000Z",
    ]) {
      expect(isTempFileOf(target, name), name).toBe(false);
    }
  });

  it("removeStaleTempFiles deletes only the target's temp files", async () => {
    const target = join(folder, "sessions.json");
    for (const name of ["sessions.json", "sessions.json.42", "sessions.json.7", "notes.txt.1"]) {
      await writeFile(join(folder, name), "x");
    }
    const removed = await removeStaleTempFiles(target);
    expect(removed.sort()).toEqual([
      join(folder, "sessions.json.42"),
      join(folder, "sessions.json.7"),
    ]);
    expect((await readdir(folder)).sort()).toEqual(["notes.txt.1", "sessions.json"]);
  });
});

describe("copyFileDurable", () => {
  it("copies bytes exactly and never overwrites an existing file", async () => {
    const from = join(folder, "a");
    const to = join(folder, "b");
    const bytes = Buffer.from([0x7b, 0xff, 0x00, 0x22]); // not valid UTF-8: copied as is
    await writeFile(from, bytes);
    await copyFileDurable(from, to);
    expect(Buffer.compare(await readFile(to), bytes)).toBe(0);

    await writeFile(from, "other");
    const failure = await copyFileDurable(from, to).catch((error: unknown) => error);
    expect(errorCode(failure)).toBe("EEXIST");
    expect(Buffer.compare(await readFile(to), bytes)).toBe(0);
  });
});

describe("readFileIfExists", () => {
  it("returns undefined for a missing file and throws other errors", async () => {
    expect(await readFileIfExists(join(folder, "nope"))).toBeUndefined();
    const failure = await readFileIfExists(folder).catch((error: unknown) => error);
    expect(errorCode(failure)).toBe("EISDIR");
  });
});
