/**
 * How long this machine's disk takes to make a small write durable: dispatch fsyncs its
 * registry, its journal (SQLite, synchronous=FULL) and its token, so this bounds what a
 * message can cost on the way through.
 */
import { mkdtemp, open, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { median, quantile, round } from "./stats.js";

export async function fsyncLatency(samples = 50): Promise<{ medianMs: number; p95Ms: number }> {
  const folder = await mkdtemp(path.join(os.tmpdir(), "dispatch-bench-fsync-"));
  const times: number[] = [];
  try {
    const handle = await open(path.join(folder, "probe"), "w");
    try {
      const block = Buffer.alloc(4096, 1);
      for (let index = 0; index < samples; index += 1) {
        const started = performance.now();
        await handle.write(block, 0, block.length, index * block.length);
        await handle.sync();
        times.push(performance.now() - started);
      }
    } finally {
      await handle.close();
    }
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
  return { medianMs: round(median(times), 2), p95Ms: round(quantile(times, 0.95), 2) };
}
