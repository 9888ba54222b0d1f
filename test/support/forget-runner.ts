/**
 * Child process for the forget crash tests: opens a dispatch home's registry, state database and
 * archive of forgotten sessions as the daemon does (default paths under `<home>`), prints
 * `ready`, then forgets the chats given, printing `forgot <chat id>` after each. The tests kill
 * it with SIGKILL.
 *
 * Run: node --import tsx test/support/forget-runner.ts <home> [--across-devices] [--hang] <chat id>...
 * `--across-devices` fails every rename out of the transcripts and CLI folders with EXDEV, so
 * folders are copied and removed; `--hang` prints `moving` at the first move and waits there.
 */
import { rename } from "node:fs/promises";
import path from "node:path";
import { systemClock } from "../../src/utils/clock.js";
import { asChatId } from "../../src/utils/ids.js";
import { openSessionArchive } from "../../src/daemon/session-archive.js";
import { createLogger } from "../../src/logging/logger.js";
import { openHomeRegistry } from "./home-registry.js";
import { openStateDatabase } from "../../src/store/sqlite-database.js";
import { createSqliteTranscriptStore } from "../../src/store/sqlite-transcript-store.js";

const [home, ...rest] = process.argv.slice(2);
if (home === undefined) {
  process.stderr.write("usage: forget-runner.ts <home> [--across-devices] [--hang] <chat id>...\n");
  process.exit(2);
}
const acrossDevices = rest.includes("--across-devices");
const hang = rest.includes("--hang");
const chatIds = rest.filter((arg) => !arg.startsWith("--")).map(asChatId);

const stateDir = path.join(home, "dispatch", "state");
const archiveDir = path.join(stateDir, "forgotten");
const logger = createLogger({ level: "warn", destination: process.stderr });
const db = openStateDatabase({ path: path.join(stateDir, "journal.db"), logger });
const registry = await openHomeRegistry(home, logger, db);
const archive = await openSessionArchive({
  archiveDir,
  transcriptsDir: path.join(home, "transcripts"),
  claudeDir: path.join(home, ".claude"),
  registry,
  transcripts: createSqliteTranscriptStore({ db }),
  clock: systemClock,
  logger,
  rename: (from, to) => {
    if (hang) {
      process.stdout.write("moving\n");
      return new Promise<void>(() => undefined);
    }
    if (acrossDevices && !from.startsWith(archiveDir)) {
      return Promise.reject(Object.assign(new Error("cross-device link"), { code: "EXDEV" }));
    }
    return rename(from, to);
  },
});
process.stdout.write("ready\n");
for (const chatId of chatIds) {
  const entry = registry.get(chatId);
  if (entry === undefined) continue;
  await archive.forget(chatId, entry);
  process.stdout.write(`forgot ${chatId}\n`);
}
process.stdout.write("done\n");
// Waits for the kill, as a daemon would go on running.
setInterval(() => undefined, 60_000);
