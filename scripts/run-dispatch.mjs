#!/usr/bin/env node
/**
 * What `npm start` and `npm run demo` run: the `dispatch` command from `dist/`, built first only
 * when a source changed since the last build (a file or folder under `src/`, or a tsconfig, newer
 * than `dist/.tsbuildinfo`). A start with nothing to build costs a few milliseconds of `stat`
 * instead of loading the TypeScript compiler, and runs in this same process (started with
 * `--optimize-for-size`, see docs/performance.md). When something changed it runs `tsc -b`, which
 * rebuilds incrementally. Plain JavaScript: it must run before anything is built.
 *
 *   node --optimize-for-size scripts/run-dispatch.mjs start [--demo]
 */
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import path from "node:path";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function modifiedAt(file) {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

/** The newest change under `folder`: files and folders (a deleted file changes its folder). */
function newestUnder(folder) {
  let newest = modifiedAt(folder) ?? 0;
  for (const entry of readdirSync(folder, { withFileTypes: true })) {
    const entryPath = path.join(folder, entry.name);
    const time = entry.isDirectory() ? newestUnder(entryPath) : (modifiedAt(entryPath) ?? 0);
    if (time > newest) newest = time;
  }
  return newest;
}

/** Whether `dist/` is older than a source, or missing. */
function isStale() {
  const builtAt = modifiedAt(path.join(repo, "dist", ".tsbuildinfo"));
  if (builtAt === undefined || modifiedAt(path.join(repo, "dist", "cli", "main.js")) === undefined)
    return true;
  const sourcesAt = Math.max(
    newestUnder(path.join(repo, "src")),
    modifiedAt(path.join(repo, "tsconfig.json")) ?? 0,
    modifiedAt(path.join(repo, "tsconfig.build.json")) ?? 0,
  );
  return sourcesAt > builtAt;
}

if (isStale()) {
  const tsc = path.join(repo, "node_modules", "typescript", "bin", "tsc");
  const result = spawnSync(process.execPath, [tsc, "-b", "tsconfig.build.json"], {
    cwd: repo,
    stdio: "inherit",
  });
  if (result.status !== 0) {
    process.stderr.write(
      "dispatch: the build failed (above); fix it, or run `npm ci` if node_modules is missing.\n",
    );
    process.exit(result.status ?? 1);
  }
}

const { runCli, createProcessDeps } = await import(
  pathToFileURL(path.join(repo, "dist", "cli", "main.js")).href
);
process.exitCode = await runCli(process.argv.slice(2), createProcessDeps());
