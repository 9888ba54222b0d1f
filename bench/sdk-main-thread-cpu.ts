/**
 * The floor under the daemon's main-thread CPU per warm turn: the bare Agent SDK's own, driving
 * one long-lived conversation with dispatch's options (`lib/direct-sdk.ts`) in a process that
 * does nothing else, the stand-in model in a child process of its own. With and without an
 * in-memory transcript store (dispatch mirrors every transcript), alternated.
 *
 *   node --optimize-for-size --import tsx bench/sdk-main-thread-cpu.ts [turns]
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { REPO } from "./lib/daemon-command.js";
import { openDirectConversation } from "./lib/direct-sdk.js";
import { sleep } from "./lib/scenario.js";

const WARM_UPS = 5;
const PAUSE_BETWEEN_TURNS_MS = 100;

/** This process's main thread's CPU, from the scheduler's nanosecond count. */
async function mainThreadCpuMs(): Promise<number> {
  const schedstat = await readFile(`/proc/${process.pid}/task/${process.pid}/schedstat`, "utf8");
  return Number(schedstat.split(" ")[0]) / 1e6;
}

const turns = Number(process.argv[2] ?? 40);
const model = spawn(
  process.execPath,
  [
    "--import",
    "tsx",
    "-e",
    "import('./src/stand-in/model-server.ts').then(async ({ startStandInModel }) => " +
      "console.log((await startStandInModel()).url))",
  ],
  { stdio: ["ignore", "pipe", "inherit"], cwd: REPO },
);
const modelUrl = await new Promise<string>((resolve) =>
  model.stdout.once("data", (chunk: Buffer) => resolve(chunk.toString().trim())),
);
const home = await mkdtemp(path.join(os.tmpdir(), "dispatch-bench-sdk-cpu-"));
try {
  for (const [index, mirror] of [true, false, true, false].entries()) {
    const folder = path.join(home, `conversation-${index}`);
    await mkdir(folder, { recursive: true });
    const conversation = openDirectConversation({ modelUrl, home, mirror }, folder);
    for (let turn = 0; turn < WARM_UPS; turn += 1) await conversation.send(`warm up ${turn}`);
    await sleep(1_000);
    const before = await mainThreadCpuMs();
    for (let turn = 0; turn < turns; turn += 1) {
      await conversation.send(`warm turn ${turn}`);
      await sleep(PAUSE_BETWEEN_TURNS_MS);
    }
    const perTurn = ((await mainThreadCpuMs()) - before) / turns;
    await conversation.close();
    console.log(
      `bare SDK, ${mirror ? "with" : "without"} a transcript store: ` +
        `${perTurn.toFixed(2)} ms of main-thread CPU per warm turn (${turns} turns)`,
    );
  }
} finally {
  model.kill();
  await rm(home, { recursive: true, force: true });
}
