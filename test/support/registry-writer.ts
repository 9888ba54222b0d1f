/**
 * Child process for test/e2e/registry-crash.test.ts: opens the registry at argv[2] and commits
 * forever, printing `committed <n>` once change n is durable. The test kills it with SIGKILL at
 * random moments and checks that the file always holds a counter it may hold.
 *
 * Run: node --import tsx test/support/registry-writer.ts <path-to-sessions.json>
 */
import { asChatId, asSessionName } from "../../src/utils/ids.js";
import { createLogger } from "../../src/logging/logger.js";
import { openJsonFileRegistry } from "../../src/store/json-file-registry.js";
import type { RegistryEntry } from "../../src/store/registry.js";

const COUNTER_CHAT = asChatId("counter@example.com");

const path = process.argv[2];
if (path === undefined) {
  process.stderr.write("usage: registry-writer.ts <path-to-sessions.json>\n");
  process.exit(2);
}

function entry(name: string): RegistryEntry {
  return {
    session_name: asSessionName(name),
    contact_name: null,
    tier: "unknown",
    session_id: null,
    created_at: new Date().toISOString(),
    last_message_time: null,
    chat_kind: "individual",
    channel: "http",
    previous_session_ids: [],
    turns: 0,
    errors: 0,
    restarts: 0,
  };
}

const registry = await openJsonFileRegistry({
  path,
  logger: createLogger({ level: "warn", destination: process.stderr }),
});
if (registry.get(COUNTER_CHAT) === undefined) registry.set(COUNTER_CHAT, entry("counter"));
let counter = registry.get(COUNTER_CHAT)?.turns ?? 0;

for (;;) {
  counter += 1;
  registry.update(COUNTER_CHAT, { turns: counter, last_message_time: new Date().toISOString() });
  // Churn: a few chats come and go, so the file changes size and shape between writes.
  registry.set(asChatId(`+1555${counter}`), entry(`extra-${counter}`));
  registry.remove(asChatId(`+1555${counter - 3}`));
  await registry.flush();
  process.stdout.write(`committed ${counter}\n`);
}
