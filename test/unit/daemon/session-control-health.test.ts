/**
 * `/healthz` and `/metrics` at ten thousand registered chats (issue 5): a scrape took ~750 ms in
 * the scale run because `health()` built every registered chat's status. They now read counts,
 * and must not walk the registry; `GET /v1/sessions` still lists every chat.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { validateConfig } from "../../../src/config/load-config.js";
import { ManualClock } from "../../support/manual-clock.js";
import { asChatId, type ChatId } from "../../../src/utils/ids.js";
import { SessionManager } from "../../../src/core/session-manager.js";
import { Inbox } from "../../../src/daemon/inbox.js";
import { createMetrics } from "../../../src/daemon/metrics.js";
import { createSessionControl } from "../../../src/daemon/session-control.js";
import { parseContacts } from "../../../src/identity/contacts.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import type { Journal } from "../../../src/store/journal.js";
import { MemoryRegistry } from "../../../src/store/memory-registry.js";
import type { RegistryEntry } from "../../../src/store/registry.js";
import { openStateDatabase } from "../../../src/store/sqlite-database.js";
import { createSqliteJournal } from "../../../src/store/sqlite-journal.js";
import { FakeAgent } from "../../support/fake-agent.js";
import { makeEntry } from "../store/registry-contract.js";
import { fakeSessionDisk } from "../../support/fake-session-disk.js";
import { createReplyRoad } from "../../support/reply-road.js";

const JOHN = "+15551234567";
const REGISTERED = 10_000;

const result = validateConfig(
  {},
  { homeDir: "/home/ada", platform: "linux", totalMemoryBytes: 8 * 1024 ** 3 },
);
if (!result.ok) throw new Error(result.problems.join("\n"));
const config = result.config;
const contacts = parseContacts(
  { contacts: [{ name: "John Doe", tier: "favorite", handles: [JOHN] }] },
  { knownTiers: Object.keys(config.tiers) },
);

/** A registry that counts walks over all of its entries. */
class CountingRegistry extends MemoryRegistry {
  walks = 0;
  override entries(): IterableIterator<[ChatId, RegistryEntry]> {
    this.walks += 1;
    return super.entries();
  }
}

let folder: string;
let journal: Journal;
beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-health-"));
  const db = openStateDatabase({ path: join(folder, "journal.db"), logger: createMemoryLogger() });
  journal = createSqliteJournal({ db });
});
afterEach(async () => {
  await journal.close();
  await rm(folder, { recursive: true, force: true });
});

function start() {
  const clock = new ManualClock();
  const registry = new CountingRegistry();
  for (let index = 0; index < REGISTERED; index += 1) {
    registry.load(asChatId(`+1666${String(index).padStart(7, "0")}`), makeEntry(`chat-${index}`));
  }
  const logger = createMemoryLogger();
  const replies = createReplyRoad({ journal, registry, clock, logger });
  const manager = new SessionManager(
    {
      agent: new FakeAgent(),
      registry,
      clock,
      logger,
      ...fakeSessionDisk(registry),
      policyFor: () => ({ allowedTools: [], disallowedTools: [], permissionMode: "dontAsk" }),
      onReply: replies.onReply,
    },
    { healthCheckIntervalMs: 300_000, idleTimeoutMs: 7_200_000, maxConsecutiveErrors: 3 },
  );
  manager.startup();
  const metrics = createMetrics();
  const inbox = new Inbox({
    manager,
    registry,
    contacts,
    config,
    metrics,
    clock,
    logger,
    journal,
    hasCredentials: true,
    answeredInRequest: replies.answeredInRequest,
  });
  const control = {
    ...createSessionControl({
      manager,
      registry,
      journal,
      config,
      metrics,
      clock,
      version: "test",
      shuttingDown: inbox.shuttingDown,
      nodes: { self: "node-a", ownerOf: () => null, listNodes: () => Promise.resolve([]) },
    }),
    submit: inbox.submit,
  };
  return { control, manager, registry };
}

describe("Session control health and metrics at 10,000 registered chats", () => {
  it("counts registered and live sessions without walking the registry", async () => {
    const { control, manager, registry } = start();
    expect(control.health().sessions).toEqual({ registered: REGISTERED, live: 0 });

    const answer = await control.submit(
      { channel: "http", chatId: JOHN, text: "hello", receivedAt: new Date() },
      { wait: true },
    );
    expect(answer.reply).toContain("hello");

    registry.walks = 0;
    expect(control.health().sessions).toEqual({ registered: REGISTERED + 1, live: 1 });
    const { body } = await control.metrics();
    expect(body).toMatch(new RegExp(`^dispatch_sessions_registered ${REGISTERED + 1}$`, "m"));
    expect(body).toMatch(/^dispatch_sessions_live 1$/m);
    expect(registry.walks).toBe(0);

    // The list still holds every chat, John's session live and idle, the others stopped.
    const views = control.listSessions();
    expect(views).toHaveLength(REGISTERED + 1);
    expect(views.find((view) => view.chat_id === JOHN)?.state).toBe("idle");
    expect(views.filter((view) => view.state === "stopped")).toHaveLength(REGISTERED);
    await manager.shutdown();
  });
});
