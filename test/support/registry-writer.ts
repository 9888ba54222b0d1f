/**
 * Child process for test/e2e/registry-crash.test.ts: opens the registry of the dispatch home at
 * argv[2] (rows in its journal.db, sessions.json the export, as the daemon does) and commits
 * forever, printing `committed <n>` once change n is durable. The test kills it with SIGKILL at
 * random moments and checks what the rows and the export hold.
 *
 * Run: node --import tsx test/support/registry-writer.ts <home>
 */
import { asChatId } from "../../src/utils/ids.js";
import { createLogger } from "../../src/logging/logger.js";
import type { RegistryEntry } from "../../src/store/registry.js";
import { openHomeRegistry } from "./home-registry.js";
import { makeEntry } from "./registry-entry.js";

const COUNTER_CHAT = asChatId("counter@example.com");

const home = process.argv[2];
if (home === undefined) {
  process.stderr.write("usage: registry-writer.ts <home>\n");
  process.exit(2);
}

function entry(name: string): RegistryEntry {
  return makeEntry(name, {
    contact_name: null,
    tier: "unknown",
    created_at: new Date().toISOString(),
    channel: "http",
  });
}

const registry = await openHomeRegistry(
  home,
  createLogger({ level: "warn", destination: process.stderr }),
);
if (registry.get(COUNTER_CHAT) === undefined) registry.set(COUNTER_CHAT, entry("counter"));
let counter = registry.get(COUNTER_CHAT)?.turns ?? 0;

for (;;) {
  counter += 1;
  // A new session id each time: a change a resume depends on, committed durably.
  registry.update(COUNTER_CHAT, {
    turns: counter,
    session_id: `session-${counter}` as RegistryEntry["session_id"],
    last_message_time: new Date().toISOString(),
  });
  // Churn: a few chats come and go.
  registry.set(asChatId(`+1555${counter}`), entry(`extra-${counter}`));
  registry.remove(asChatId(`+1555${counter - 3}`));
  await registry.flush();
  // The export is written often too, so kills land in its writes as well.
  if (counter % 5 === 0) await registry.export?.write();
  process.stdout.write(`committed ${counter}\n`);
}
