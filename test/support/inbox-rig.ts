/**
 * The rig of the inbox's unit tests: the daemon's message path without the daemon.
 * - `useSqliteJournal`: a real SQLite journal in a temporary folder, fresh for each test;
 * - `testConfig` and `testContacts`: the configuration (defaults on a Linux host, what the test
 *   sets over them) and a contact book on its tiers;
 * - `startInbox`: one start of the daemon's inbox over a journal, a session manager on a fake
 *   agent, and the reply road (`reply-road.ts`) between them, wired as `daemon.ts` wires them.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach } from "vitest";
import { validateConfig } from "../../src/config/load-config.js";
import type { Config } from "../../src/config/schema.js";
import type { TurnReply } from "../../src/core/session.js";
import { Inbox, type InboxDeps } from "../../src/daemon/inbox.js";
import { createMetrics, type Metrics } from "../../src/daemon/metrics.js";
import {
  parseContacts,
  type ContactBook,
  type ContactsOptions,
} from "../../src/identity/contacts.js";
import type { Journal } from "../../src/store/journal.js";
import { createMemoryRegistry } from "../../src/store/memory-registry.js";
import type { Registry } from "../../src/store/registry.js";
import { openStateDatabase } from "../../src/store/sqlite-database.js";
import { createSqliteJournal } from "../../src/store/sqlite-journal.js";
import { FakeAgent } from "./fake-agent.js";
import { ManualClock } from "./manual-clock.js";
import { createMemoryLogger } from "./memory-logger.js";
import { createReplyRoad } from "./reply-road.js";
import { startTestManager } from "./test-manager.js";

/** The configuration on a Linux host with 8 GiB of memory: the defaults, `input` over them. */
export function testConfig(input: Record<string, unknown> = {}): Config {
  const validated = validateConfig(input, {
    homeDir: "/home/ada",
    platform: "linux",
    totalMemoryBytes: 8 * 1024 ** 3,
  });
  if (!validated.ok) throw new Error(validated.problems.join("\n"));
  return validated.config;
}

/** A contact book of contacts.json's `contacts`, on the configuration's tiers. */
export function testContacts(
  config: Config,
  contacts: { name: string; tier: string; handles: string[] }[],
  options: Omit<ContactsOptions, "knownTiers"> = {},
): ContactBook {
  return parseContacts({ contacts }, { knownTiers: Object.keys(config.tiers), ...options });
}

/**
 * A SQLite journal in a temporary folder, opened before each test of the file and closed and
 * removed after it. Call it at the top of a test file; it registers the hooks.
 */
export function useSqliteJournal(folderPrefix: string): { readonly journal: Journal } {
  let folder: string | undefined;
  let journal: Journal | undefined;
  beforeEach(async () => {
    folder = await mkdtemp(join(tmpdir(), folderPrefix));
    const db = openStateDatabase({
      path: join(folder, "journal.db"),
      logger: createMemoryLogger(),
    });
    journal = createSqliteJournal({ db });
  });
  afterEach(async () => {
    await journal?.close();
    journal = undefined;
    if (folder !== undefined) await rm(folder, { recursive: true, force: true });
    folder = undefined;
  });
  return {
    get journal() {
      if (journal === undefined) throw new Error("The journal is open only during a test");
      return journal;
    },
  };
}

export interface InboxRigOptions {
  journal: Journal;
  config: Config;
  contacts: ContactBook;
  /** A new fake agent unless given (a start after a crash keeps the sessions of the one before). */
  agent?: FakeAgent;
  /** A new memory registry unless given. */
  registry?: Registry;
  /** More of the inbox's dependencies (replay's transcript lookup). */
  inbox?: Partial<InboxDeps>;
}

/**
 * One start of the daemon's message path: a session manager (started) on the agent, the inbox
 * over the journal, one clock, logger and registry for both, and the reply road that records each
 * reply in the journal and hands it to the HTTP request waiting for it. A reply the replay finds
 * in a transcript is recorded the same way, and kept in `recovered`.
 */
export function startInbox(options: InboxRigOptions) {
  const { journal, config, contacts } = options;
  const agent = options.agent ?? new FakeAgent();
  const registry = options.registry ?? createMemoryRegistry();
  const clock = new ManualClock();
  const logger = createMemoryLogger();
  const metrics: Metrics = createMetrics();
  const recovered: TurnReply[] = [];
  const replies = createReplyRoad({ journal, registry, clock, logger });
  const manager = startTestManager({
    agent,
    registry,
    clock,
    logger,
    onReply: replies.onReply,
  });
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
    onRecoveredReply: async (reply) => {
      recovered.push(reply);
      await replies.recordReply(reply);
    },
    answeredInRequest: replies.answeredInRequest,
    ...options.inbox,
  });
  return { inbox, manager, agent, registry, clock, logger, metrics, recovered };
}
