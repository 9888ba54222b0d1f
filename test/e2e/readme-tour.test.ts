import { spawn, type ChildProcess } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../support/daemon-process.js";
import { makeTempHome, waitUntil } from "../support/real-manager.js";

/**
 * The README's five-minute tour, run word for word on a clean home: every command of its `sh`
 * blocks and every `npx dispatch ...` it names in passing, in the order they appear, each
 * checked against the output the README shows for it (the `# ...` lines under it). So the tour
 * cannot drift from what dispatch does.
 *
 * What the test must arrange, and how: the home is a fresh temporary folder (HOME), the port a
 * free one (DISPATCH_PORT, and the tour's `127.0.0.1:7878` read as that port), npm's update check
 * off (it would go to the network). `npm ci` is not run: it would delete node_modules under this
 * very test run; the repository is installed already. `npm run demo` starts the daemon in the
 * background; when the tour starts it again, the one before is killed with `kill -9`, one of
 * the two ways the README names.
 */
const REPO = path.resolve(import.meta.dirname, "../..");
const README_PORT = "7878";

interface Step {
  command: string;
  /** The output the README shows under the command, if any. */
  expected: string[];
}

/** The tour's steps: its `sh` blocks and inline `npx dispatch` commands, in order. */
function tourSteps(readme: string): Step[] {
  const start = readme.indexOf("## A five-minute tour");
  const end = readme.indexOf("\n## ", start + 1);
  if (start === -1 || end === -1) throw new Error("The README has no five-minute tour section.");
  const tour = readme.slice(start, end);
  const steps: Step[] = [];
  const pieces = /```sh\n([\s\S]*?)```|`(npx dispatch [a-z][^`]*)`/g;
  for (const match of tour.matchAll(pieces)) {
    if (match[2] !== undefined) {
      steps.push({ command: match[2], expected: [] });
      continue;
    }
    // Lines ending in a backslash continue on the next.
    const lines = match[1]!.replace(/\\\n\s*/g, "").split("\n");
    for (const line of lines) {
      if (line.trim() === "") continue;
      if (line.startsWith("#")) {
        // `# output     (a remark)`: the remark after two or more spaces is not output.
        steps.at(-1)?.expected.push(line.replace(/^#\s?/, "").replace(/\s{2,}\(.*\)$/, ""));
      } else {
        steps.push({ command: line.trim(), expected: [] });
      }
    }
  }
  return steps;
}

let home: { home: string; remove(): Promise<void> };
let port: number;
let env: NodeJS.ProcessEnv;
let daemon: { child: ChildProcess; output: () => string; exited: Promise<void> } | undefined;

beforeAll(async () => {
  home = await makeTempHome();
  port = await freePort();
  env = {
    PATH: process.env.PATH,
    HOME: home.home,
    DISPATCH_PORT: String(port),
    npm_config_update_notifier: "false",
    npm_config_fund: "false",
  };
});

afterAll(async () => {
  if (daemon) {
    killGroup(daemon.child, "SIGTERM");
    await daemon.exited;
  }
  await home.remove();
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // Gone already.
  }
}

async function healthy(): Promise<boolean> {
  return fetch(`http://127.0.0.1:${port}/healthz`).then(
    (response) => response.ok,
    () => false,
  );
}

/** `npm run demo` in the background, as in the tour's first terminal. */
async function startDaemon(command: string): Promise<void> {
  if (daemon) {
    killGroup(daemon.child, "SIGKILL");
    await daemon.exited;
  }
  const child = spawn("sh", ["-c", command], { cwd: REPO, env, detached: true });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  daemon = { child, output: () => output, exited };
  // The first start may build dist/ first (tsc), which takes a while on a loaded machine.
  const deadline = Date.now() + 240_000;
  while (!(await healthy())) {
    if (child.exitCode !== null) throw new Error(`\`${command}\` exited early:\n${output}`);
    if (Date.now() > deadline) throw new Error(`\`${command}\` did not come up:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // The start banner names where everything is.
  await waitUntil(() => output.includes("Ctrl-C stops dispatch."), 30_000, "the start banner");
  expect(output).toContain("is running in demo mode");
  expect(output).toContain(`dashboard  http://127.0.0.1:${port}/`);
  expect(output).toContain(
    `API token  in ${path.join(home.home, "dispatch", "state", "api-token")}`,
  );
}

/** Runs one command as a shell would, from the clone, with stdin at its end. */
function run(command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "sh",
      ["-c", command.replaceAll(`127.0.0.1:${README_PORT}`, `127.0.0.1:${port}`)],
      {
        cwd: REPO,
        env,
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end();
  });
}

describe("the README's five-minute tour", () => {
  it("runs word for word on a clean home, each command printing what the README shows", async () => {
    const steps = tourSteps(await readFile(path.join(REPO, "README.md"), "utf8"));
    // The install is shown once, first; the rest of the tour never installs again.
    expect(steps[0]).toEqual({ command: "npm ci", expected: [] });
    expect(steps.slice(1).filter((step) => step.command.includes("npm ci"))).toEqual([]);
    expect(steps.filter((step) => step.command === "npm run demo")).toHaveLength(2);
    expect(steps.length).toBeGreaterThan(10);

    for (const step of steps.slice(1)) {
      if (step.command === "npm run demo") {
        await startDaemon(step.command);
        continue;
      }
      const result = await run(step.command);
      const context = `${step.command}\n${result.stdout}\n${result.stderr}`;
      expect(result.code, context).toBe(0);
      if (step.expected.length > 0) {
        expect(result.stdout.trim(), context).toBe(step.expected.join("\n"));
      }
      if (step.command.startsWith("curl")) {
        expect(JSON.parse(result.stdout), context).toMatchObject({
          chat_id: "+15551234567",
          reply: expect.stringMatching(
            /^\[stand-in model\] Reply to message \d+: hello/,
          ) as unknown,
        });
      }
      if (step.command.startsWith("npx dispatch logs")) {
        // The daemon's own log file, read by the CLI: the second start's record among its lines.
        expect(result.stdout, context).toMatch(/INFO: daemon-start .*"demo":true/);
      }
      if (step.command.startsWith("npx dispatch doctor")) {
        expect(result.stdout, context).toContain(
          "! No Claude credentials found; the running daemon is in demo mode",
        );
      }
    }
  }, 600_000);
});
