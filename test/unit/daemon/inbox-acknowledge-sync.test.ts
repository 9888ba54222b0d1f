/**
 * When a message is acknowledged, its record must survive a power cut; before that, the agent may
 * already work on it. The journal's `sync()` is held here, so what waits for it shows.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { validateConfig } from "../../../src/config/load-config.js";
import { ManualClock } from "../../support/manual-clock.js";
import { SessionManager } from "../../../src/core/session-manager.js";
import { Inbox } from "../../../src/daemon/inbox.js";
import { createMetrics } from "../../../src/daemon/metrics.js";
import { parseContacts } from "../../../src/identity/contacts.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import type { Journal } from "../../../src/store/journal.js";
import { createMemoryRegistry } from "../../../src/store/memory-registry.js";
import { openStateDatabase } from "../../../src/store/sqlite-database.js";
import { createSqliteJournal } from "../../../src/store/sqlite-journal.js";
import { FakeAgent } from "../../support/fake-agent.js";
import { fakeSessionDisk } from "../../support/fake-session-disk.js";
import { createReplyRoad } from "../../support/reply-road.js";

const JOHN = "+15551234567";

const validated = validateConfig(
  {},
  { homeDir: "/home/ada", platform: "linux", totalMemoryBytes: 8 * 1024 ** 3 },
);
if (!validated.ok) throw new Error(validated.problems.join("\n"));
const config = validated.config;
const contacts = parseContacts(
  { contacts: [{ name: "John Doe", tier: "favorite", handles: [JOHN] }] },
  { knownTiers: Object.keys(config.tiers) },
);

let folder: string;
let journal: Journal;
let syncs: number;
let releaseSync: () => void;

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-acknowledge-"));
  const db = openStateDatabase({ path: join(folder, "journal.db"), logger: createMemoryLogger() });
  const real = createSqliteJournal({ db });
  syncs = 0;
  const held = new Promise<void>((resolve) => (releaseSync = resolve));
  journal = {
    ...real,
    sync: async () => {
      syncs += 1;
      await held;
      await real.sync();
    },
  };
});

afterEach(async () => {
  releaseSync();
  await journal.close();
  await rm(folder, { recursive: true, force: true });
});

function start(agent: FakeAgent) {
  const registry = createMemoryRegistry();
  // The daemon's reply path: the reply is recorded, durably, before it goes out.
  const replies = createReplyRoad({
    journal,
    registry,
    clock: new ManualClock(),
    logger: createMemoryLogger(),
  });
  const manager = new SessionManager(
    {
      agent,
      registry,
      clock: new ManualClock(),
      logger: createMemoryLogger(),
      ...fakeSessionDisk(registry),
      policyFor: () => ({ allowedTools: [], disallowedTools: [], permissionMode: "dontAsk" }),
      onReply: replies.onReply,
    },
    { healthCheckIntervalMs: 300_000, idleTimeoutMs: 7_200_000, maxConsecutiveErrors: 3 },
  );
  manager.startup();
  const inbox = new Inbox({
    manager,
    registry: createMemoryRegistry(),
    contacts,
    config,
    metrics: createMetrics(),
    clock: new ManualClock(),
    logger: createMemoryLogger(),
    journal,
    hasCredentials: true,
    answeredInRequest: replies.answeredInRequest,
  });
  return { inbox, manager };
}

const message = (externalId: string) => ({
  channel: "http",
  chatId: JOHN,
  text: `hello ${externalId}`,
  externalId,
  receivedAt: new Date(),
});

describe("acknowledging a message", () => {
  it("without wait: hands it to the agent at once, acknowledges only after the journal's sync", async () => {
    const agent = new FakeAgent();
    agent.autoReply = false;
    const { inbox, manager } = start(agent);
    let acknowledged = false;
    const submitted = inbox.submit(message("m-1"), { wait: false }).then((result) => {
      acknowledged = true;
      return result;
    });
    await expect.poll(() => agent.conversations[0]?.inputs.length ?? 0).toBe(1);
    expect(syncs).toBe(1);
    expect(acknowledged).toBe(false);
    releaseSync();
    expect((await submitted).message_id).toBe("m-1");
    await manager.shutdown();
  });

  it("with wait: the reply, recorded durably, is the acknowledgment; no separate sync", async () => {
    const { inbox, manager } = start(new FakeAgent());
    const result = await inbox.submit(message("m-2"), { wait: true });
    expect(result.reply).toContain("hello m-2");
    expect(syncs).toBe(0);
    expect((await journal.findByExternalId("http", "m-2"))?.status).toBe("answered");
    await manager.shutdown();
  });
});
