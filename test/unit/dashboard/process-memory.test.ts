import { describe, expect, it } from "vitest";
import { parseProcStatus, readProcessMemory } from "../../../src/dashboard/process-memory.js";

describe("process memory", () => {
  it("reads VmRSS from a /proc status text, in bytes", () => {
    const status = "Name:\tclaude\nVmPeak:\t  900000 kB\nVmRSS:\t  183456 kB\nThreads:\t12\n";
    expect(parseProcStatus(status)).toBe(183456 * 1024);
    expect(parseProcStatus("Name:\tzombie\n")).toBeNull();
  });

  it("reads this process's memory, and null for no process", async () => {
    const bytes = await readProcessMemory(process.pid);
    expect(bytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(await readProcessMemory(0)).toBeNull();
    expect(await readProcessMemory(2 ** 22 + 12_345)).toBeNull();
  });
});
