/**
 * Where the daemon's CPU goes: a summary of the `.cpuprofile` V8 writes when the daemon runs
 * with `--cpu-prof` (`npm run bench -- --profile`). Each busy sample is charged to the nearest
 * dispatch module on its stack (the code that asked for the work), so time in better-sqlite3 or
 * in `fs.write` counts against the store that called it. Pure apart from reading the file.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import type { Row } from "./scenario.js";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A stretch of CLOCK_MONOTONIC in microseconds: `process.hrtime.bigint() / 1000n` here. */
export interface ProfileWindow {
  fromUs: number;
  toUs: number;
}

/** Now on the clock V8 stamps profile samples with (CLOCK_MONOTONIC, microseconds). */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export interface ProfileSummary {
  /** Whether only the measured stretch was summarised (false: the whole profile). */
  windowed: boolean;
  /** Wall time summarised, and how much of it the main thread was busy. */
  durationMs: number;
  busyMs: number;
  /** Busy time by the nearest dispatch module on the stack (`store/row-registry`, ...). */
  byModule: { module: string; ms: number; share: number }[];
  /** Busy time by dispatch function, counting everything it called. */
  inclusive: { frame: string; ms: number }[];
}

const SKIPPED = new Set(["(idle)", "(program)"]);

/** `file:///.../dist/store/row-registry.js` -> `store/row-registry`. */
function dispatchModule(url: string): string | undefined {
  if (url.includes("/node_modules/")) return undefined;
  const match = /\/dist\/(.+)\.js$/.exec(url) ?? /\/src\/(.+)\.ts$/.exec(url);
  return match?.[1];
}

export function summarizeProfile(
  profile: CpuProfile,
  window?: ProfileWindow,
  top = 15,
): ProfileSummary {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parents.set(child, node.id);
  }
  const sampleMs = (profile.endTime - profile.startTime) / 1000 / profile.samples.length;
  const windowed =
    window !== undefined && window.fromUs < profile.endTime && window.toUs > profile.startTime;
  const byModule = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let busy = 0;
  let at = profile.startTime;
  for (const [index, sample] of profile.samples.entries()) {
    at += profile.timeDeltas[index] ?? 0;
    if (windowed && (at < window.fromUs || at >= window.toUs)) continue;
    const leaf = nodes.get(sample);
    if (!leaf || SKIPPED.has(leaf.callFrame.functionName)) continue;
    busy += 1;
    let charged: string | undefined =
      leaf.callFrame.functionName === "(garbage collector)" ? "(garbage collector)" : undefined;
    const seen = new Set<string>();
    for (let id: number | undefined = sample; id !== undefined; id = parents.get(id)) {
      const frame = nodes.get(id)?.callFrame;
      if (!frame) break;
      const module = dispatchModule(frame.url);
      if (module === undefined) continue;
      charged ??= module;
      const name = `${frame.functionName || "(anonymous)"} ${module}:${frame.lineNumber + 1}`;
      if (!seen.has(name)) {
        seen.add(name);
        inclusive.set(name, (inclusive.get(name) ?? 0) + 1);
      }
    }
    charged ??= "(node and libraries, no dispatch frame)";
    byModule.set(charged, (byModule.get(charged) ?? 0) + 1);
  }
  const busyMs = busy * sampleMs;
  const ranked = (counts: Map<string, number>) =>
    [...counts].sort((left, right) => right[1] - left[1]).slice(0, top);
  const covered = windowed
    ? Math.min(window.toUs, profile.endTime) - Math.max(window.fromUs, profile.startTime)
    : profile.endTime - profile.startTime;
  return {
    windowed,
    durationMs: Math.round(covered / 1000),
    busyMs: Math.round(busyMs),
    byModule: ranked(byModule).map(([module, count]) => ({
      module,
      ms: Math.round(count * sampleMs),
      share: Math.round((count / Math.max(1, busy)) * 1000) / 1000,
    })),
    inclusive: ranked(inclusive).map(([frame, count]) => ({
      frame,
      ms: Math.round(count * sampleMs),
    })),
  };
}

/** Summarises the newest `.cpuprofile` in `folder`, or undefined when there is none. */
export async function summarizeNewestProfile(
  folder: string,
  window?: ProfileWindow,
): Promise<ProfileSummary | undefined> {
  const files = (await readdir(folder).catch(() => [] as string[]))
    .filter((name) => name.endsWith(".cpuprofile"))
    .sort();
  const newest = files.at(-1);
  if (newest === undefined) return undefined;
  const profile = JSON.parse(await readFile(path.join(folder, newest), "utf8")) as CpuProfile;
  return summarizeProfile(profile, window);
}

/** Table rows: the busy share, and the three modules that used most of it. */
export function profileRows(
  summary: ProfileSummary | undefined,
  per?: { count: number; unit: string },
): Row[] {
  if (summary === undefined) return [];
  const perItem = per ? `, ${Math.round(summary.busyMs / per.count)} ms per ${per.unit}` : "";
  return [
    {
      measure: "daemon main thread busy (CPU profile)",
      value: `${Math.round((summary.busyMs / Math.max(1, summary.durationMs)) * 100)}%${perItem}`,
    },
    ...summary.byModule.slice(0, 4).map((entry) => ({
      measure: `  of which ${entry.module}`,
      value: `${Math.round(entry.share * 100)}%`,
    })),
  ];
}
