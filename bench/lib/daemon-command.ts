/**
 * How the benchmark starts the daemon. `dist` (the default) measures what `npm start` runs:
 * the TypeScript compiled to JavaScript, here into a folder of the benchmark's own under the
 * system temp folder (incrementally, without type checking), never the repository's `dist/`.
 * `tsx` runs the sources as the end-to-end tests do; the loader and its esbuild child add about
 * 50 MB to the daemon, so its memory figures are not the product's.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFile, mkdir, readdir, symlink, lstat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

export const REPO = path.resolve(import.meta.dirname, "../..");

export type DaemonRunner = "dist" | "tsx";

export interface DaemonCommand {
  runner: DaemonRunner;
  /** Arguments to `node` that run `dispatch start`. */
  args: string[];
  /** How long preparing took (the incremental compile for `dist`). */
  prepareMs: number;
  /** Compiler diagnostics, when the sources did not type-check (the output is still used). */
  warnings: string[];
}

export async function prepareDaemonCommand(runner: DaemonRunner): Promise<DaemonCommand> {
  const started = performance.now();
  if (runner === "tsx") {
    return {
      runner,
      args: ["--import", "tsx", path.join(REPO, "src/cli/main.ts"), "start"],
      prepareMs: 0,
      warnings: [],
    };
  }
  const repoKey = createHash("sha256").update(REPO).digest("hex").slice(0, 12);
  const root = path.join(os.tmpdir(), `dispatch-bench-build-${repoKey}`);
  const outDir = path.join(root, "dist");
  await mkdir(outDir, { recursive: true });
  // dist/daemon/version.ts reads ../../package.json; "type": "module" makes the .js files ESM.
  await copyFile(path.join(REPO, "package.json"), path.join(root, "package.json"));
  const modules = path.join(root, "node_modules");
  const exists = await lstat(modules).then(
    () => true,
    () => false,
  );
  if (!exists) await symlink(path.join(REPO, "node_modules"), modules, "dir");

  const compiler = await run(process.execPath, [
    path.join(REPO, "node_modules/typescript/bin/tsc"),
    "-p",
    path.join(REPO, "tsconfig.build.json"),
    "--outDir",
    outDir,
    "--sourceMap",
    "false",
    // Emit only: type errors are `npm test`'s to report, and checking doubles the wait.
    "--noCheck",
    "--incremental",
    "--tsBuildInfoFile",
    path.join(root, "build.tsbuildinfo"),
  ]);
  // 0: clean; 2: type errors, output written anyway (another engineer's edit in progress).
  if (compiler.code !== 0 && compiler.code !== 2) {
    throw new Error(
      `[bench] Compiling the daemon into ${outDir} failed (tsc exit ${compiler.code}):\n${compiler.output}\n` +
        "Fix the sources, or run the daemon from source with `npm run bench -- --runner tsx`.",
    );
  }
  await copyAssets(path.join(REPO, "src"), outDir);
  return {
    runner,
    // As `npm start` runs it.
    args: ["--optimize-for-size", path.join(outDir, "cli/main.js"), "start"],
    prepareMs: performance.now() - started,
    warnings:
      compiler.code === 0 ? [] : compiler.output.trim().split("\n").filter(Boolean).slice(0, 20),
  };
}

/** Files the compiler does not copy (the AppleScript of the iMessage channel). */
async function copyAssets(from: string, to: string): Promise<void> {
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isDirectory()) {
      await mkdir(target, { recursive: true });
      await copyAssets(source, target);
    } else if (!entry.name.endsWith(".ts")) {
      await copyFile(source, target);
    }
  }
}

function run(command: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, output }));
  });
}
