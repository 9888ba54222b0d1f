import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { logFilesInOrder, openLogFile } from "../../../src/logging/log-file.js";

let folder: string;
let file: string;

beforeEach(async () => {
  folder = await mkdtemp(path.join(tmpdir(), "dispatch-log-file-"));
  file = path.join(folder, "logs", "dispatch.log");
});
afterEach(async () => {
  await rm(folder, { recursive: true, force: true });
});

/** A 20-byte line: `line 0001 .........\n`. */
const line = (index: number) => `line ${String(index).padStart(4, "0")} `.padEnd(19, ".") + "\n";

describe("openLogFile", () => {
  it("creates its folder and a file only the user may read", async () => {
    openLogFile({ path: file, maxBytes: 1000, keep: 2 }).write(line(1));
    expect(await readFile(file, "utf8")).toBe(line(1));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it("starts a new file before one would pass its cap, keeping `keep` older ones", async () => {
    const log = openLogFile({ path: file, maxBytes: 60, keep: 2 });
    for (let index = 1; index <= 10; index += 1) log.write(line(index));
    // Three lines a file; the oldest (lines 1-4) are gone.
    expect((await readdir(path.dirname(file))).sort()).toEqual([
      "dispatch.log",
      "dispatch.log.1",
      "dispatch.log.2",
    ]);
    expect(await readFile(`${file}.2`, "utf8")).toBe(line(4) + line(5) + line(6));
    expect(await readFile(`${file}.1`, "utf8")).toBe(line(7) + line(8) + line(9));
    expect(await readFile(file, "utf8")).toBe(line(10));
    expect(logFilesInOrder(file, 2)).toEqual([`${file}.2`, `${file}.1`, file]);
  });

  it("counts what an earlier run wrote", async () => {
    openLogFile({ path: file, maxBytes: 60, keep: 1 }).write(line(1) + line(2));
    openLogFile({ path: file, maxBytes: 60, keep: 1 }).write(line(3) + line(4));
    expect(await readFile(`${file}.1`, "utf8")).toBe(line(1) + line(2));
    expect(await readFile(file, "utf8")).toBe(line(3) + line(4));
  });
});
