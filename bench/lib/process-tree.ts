/**
 * Memory and CPU of a process and its descendants, read from Linux's /proc. RSS counts shared
 * pages (the CLI binary's text) once per process, so a sum over processes overstates what the
 * machine spends; PSS splits shared pages among their users and sums to the real cost.
 */
import { readdir, readFile } from "node:fs/promises";

/** Clock ticks per second of /proc/<pid>/stat's CPU fields (`getconf CLK_TCK`; 100 on Linux). */
const TICKS_PER_SECOND = 100;

export interface ProcessInfo {
  pid: number;
  parentPid: number;
  /** The command line, NULs as spaces. */
  command: string;
}

export interface ProcessMemory extends ProcessInfo {
  rssKb: number;
  pssKb: number;
}

export interface TreeMemory {
  rootRssKb: number;
  rootPssKb: number;
  /** Every descendant, children of children included. */
  descendants: ProcessMemory[];
  totalRssKb: number;
  totalPssKb: number;
}

export function assertProcfs(): void {
  if (process.platform !== "linux") {
    throw new Error(
      `The benchmark reads memory and CPU from /proc, which ${process.platform} does not have; run it on Linux.`,
    );
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return undefined; // the process ended meanwhile
  }
}

/** Fields after the `(comm)` of /proc/<pid>/stat: index 0 is the state, 1 the parent pid. */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

export async function listProcesses(): Promise<ProcessInfo[]> {
  const names = await readdir("/proc");
  const found = await Promise.all(
    names
      .filter((name) => /^\d+$/.test(name))
      .map(async (name): Promise<ProcessInfo | undefined> => {
        const stat = await readOptional(`/proc/${name}/stat`);
        if (stat === undefined) return undefined;
        const command = (await readOptional(`/proc/${name}/cmdline`)) ?? "";
        return {
          pid: Number(name),
          parentPid: Number(statFields(stat)[1]),
          command: command.replaceAll("\0", " ").trim(),
        };
      }),
  );
  return found.filter((info): info is ProcessInfo => info !== undefined);
}

/** Descendants of `rootPid` (not the root itself), found through parent pids. */
export async function descendantsOf(rootPid: number): Promise<ProcessInfo[]> {
  const processes = await listProcesses();
  const children = new Map<number, ProcessInfo[]>();
  for (const info of processes) {
    const siblings = children.get(info.parentPid) ?? [];
    siblings.push(info);
    children.set(info.parentPid, siblings);
  }
  const result: ProcessInfo[] = [];
  const pending = [rootPid];
  while (pending.length > 0) {
    for (const child of children.get(pending.pop()!) ?? []) {
      result.push(child);
      pending.push(child.pid);
    }
  }
  return result;
}

/** VmRSS in kB, or 0 when the process is gone. */
export async function rssKb(pid: number): Promise<number> {
  const status = await readOptional(`/proc/${pid}/status`);
  return Number(/^VmRSS:\s+(\d+)/m.exec(status ?? "")?.[1] ?? 0);
}

/** Proportional set size in kB, or 0 when the process is gone. */
export async function pssKb(pid: number): Promise<number> {
  const rollup = await readOptional(`/proc/${pid}/smaps_rollup`);
  return Number(/^Pss:\s+(\d+)/m.exec(rollup ?? "")?.[1] ?? 0);
}

/** CPU time (user + system) in ms of the process itself, plus of its reaped children when asked. */
export async function cpuMs(pid: number, withReapedChildren = false): Promise<number> {
  const stat = await readOptional(`/proc/${pid}/stat`);
  if (stat === undefined) return 0;
  const fields = statFields(stat);
  // utime, stime, cutime, cstime are fields 14-17 of stat, 12-15 after the comm.
  const own = Number(fields[11]) + Number(fields[12]);
  const reaped = withReapedChildren ? Number(fields[13]) + Number(fields[14]) : 0;
  return ((own + reaped) * 1000) / TICKS_PER_SECOND;
}

/**
 * CPU time in ms the process's main thread (the event loop) has run, from the scheduler's
 * nanosecond count (`/proc/<pid>/task/<pid>/schedstat`): without the thread pool, the garbage
 * collector's helpers and the time blocked in a system call. Undefined when it cannot be read.
 */
export async function mainThreadCpuMs(pid: number): Promise<number | undefined> {
  const schedstat = await readOptional(`/proc/${pid}/task/${pid}/schedstat`);
  const runNs = Number(schedstat?.split(" ")[0]);
  return Number.isFinite(runNs) ? runNs / 1e6 : undefined;
}

/**
 * CPU ms of the whole tree: the root, its reaped children and its live descendants. Without
 * the root's own time when `includeRoot` is false (the benchmark watching its own children).
 */
export async function treeCpuMs(rootPid: number, includeRoot = true): Promise<number> {
  const live = await descendantsOf(rootPid);
  const parts = await Promise.all(live.map((info) => cpuMs(info.pid, true)));
  const root = includeRoot ? await cpuMs(rootPid, true) : 0;
  return root + parts.reduce((sum, value) => sum + value, 0);
}

export async function treeMemory(rootPid: number, withPss = true): Promise<TreeMemory> {
  const live = await descendantsOf(rootPid);
  const descendants = await Promise.all(
    live.map(async (info) => ({
      ...info,
      rssKb: await rssKb(info.pid),
      pssKb: withPss ? await pssKb(info.pid) : 0,
    })),
  );
  const rootRss = await rssKb(rootPid);
  const rootPss = withPss ? await pssKb(rootPid) : 0;
  return {
    rootRssKb: rootRss,
    rootPssKb: rootPss,
    descendants,
    totalRssKb: rootRss + descendants.reduce((sum, info) => sum + info.rssKb, 0),
    totalPssKb: rootPss + descendants.reduce((sum, info) => sum + info.pssKb, 0),
  };
}

/** A Claude CLI child of the daemon (the SDK's native binary, or `cli.js` of older SDKs). */
export function isAgentProcess(info: ProcessInfo): boolean {
  const program = info.command.split(" ")[0] ?? "";
  return /claude[^/]*$/i.test(program) || /claude-agent-sdk\/cli\.js/.test(info.command);
}

export interface TreePeaks {
  samples: number;
  peakTotalRssKb: number;
  peakRootRssKb: number;
  peakAgentProcesses: number;
  lastAgentProcesses: number;
  lastRootRssKb: number;
  lastTotalRssKb: number;
}

export interface TreeSampler {
  /** The peaks so far. */
  peaks(): TreePeaks;
  /** Stops sampling and resolves with the peaks, once the sample in flight has ended. */
  stop(): Promise<TreePeaks>;
}

/** Samples the tree's RSS and its agent processes every `intervalMs` until stopped. */
export function sampleTree(rootPid: number, intervalMs: number): TreeSampler {
  const peaks: TreePeaks = {
    samples: 0,
    peakTotalRssKb: 0,
    peakRootRssKb: 0,
    peakAgentProcesses: 0,
    lastAgentProcesses: 0,
    lastRootRssKb: 0,
    lastTotalRssKb: 0,
  };
  let stopped = false;
  let failure: unknown;
  const loop = (async () => {
    while (!stopped) {
      const memory = await treeMemory(rootPid, false);
      const agents = memory.descendants.filter(isAgentProcess).length;
      peaks.samples += 1;
      peaks.peakTotalRssKb = Math.max(peaks.peakTotalRssKb, memory.totalRssKb);
      peaks.peakRootRssKb = Math.max(peaks.peakRootRssKb, memory.rootRssKb);
      peaks.peakAgentProcesses = Math.max(peaks.peakAgentProcesses, agents);
      peaks.lastAgentProcesses = agents;
      peaks.lastRootRssKb = memory.rootRssKb;
      peaks.lastTotalRssKb = memory.totalRssKb;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })().catch((error: unknown) => {
    failure = error;
  });
  return {
    peaks: () => ({ ...peaks }),
    async stop() {
      stopped = true;
      await loop;
      if (failure !== undefined) {
        throw failure instanceof Error ? failure : new Error("the tree sampler failed");
      }
      return { ...peaks };
    },
  };
}

/** Whether a pid still names a running (not zombie) process. */
export async function isRunning(pid: number): Promise<boolean> {
  const stat = await readOptional(`/proc/${pid}/stat`);
  return stat !== undefined && statFields(stat)[0] !== "Z";
}

export function mb(kb: number): number {
  return Math.round((kb / 1024) * 10) / 10;
}

/**
 * Resolves once the tree of `rootPid` used under `threshold` of one CPU over `windowMs` (the
 * previous sample's work has settled), or after `timeoutMs`; returns whether it got quiet.
 */
export async function waitForQuiet(
  rootPid: number,
  options: {
    windowMs?: number;
    threshold?: number;
    timeoutMs?: number;
    includeRoot?: boolean;
  } = {},
): Promise<boolean> {
  const includeRoot = options.includeRoot ?? rootPid !== process.pid;
  const windowMs = options.windowMs ?? 300;
  const threshold = options.threshold ?? 0.1;
  const deadline = performance.now() + (options.timeoutMs ?? 10_000);
  while (performance.now() < deadline) {
    const before = await treeCpuMs(rootPid, includeRoot);
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    if ((await treeCpuMs(rootPid, includeRoot)) - before < windowMs * threshold) return true;
  }
  return false;
}

/** Busy and total jiffies of the whole machine, from the first line of /proc/stat. */
export async function machineCpuTicks(): Promise<{ busy: number; total: number }> {
  const line = (await readFile("/proc/stat", "utf8")).split("\n")[0] ?? "";
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}
