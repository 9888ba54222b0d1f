/**
 * When a message is acknowledged, its record must survive a power cut; before that, the agent may
 * already work on it. The journal's `sync()` is held here, so what waits for it shows.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Journal } from "../../../src/store/journal.js";
import { FakeAgent } from "../../support/fake-agent.js";
import { startInbox, testConfig, testContacts, useSqliteJournal } from "../../support/inbox-rig.js";

const JOHN = "+15551234567";

const config = testConfig();
const contacts = testContacts(config, [{ name: "John Doe", tier: "favorite", handles: [JOHN] }]);

const sqlite = useSqliteJournal("dispatch-acknowledge-");
let journal: Journal;
let syncs: number;
let releaseSync: () => void;

beforeEach(() => {
  const real = sqlite.journal;
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

afterEach(() => {
  releaseSync();
});

function start(agent: FakeAgent) {
  return startInbox({ journal, config, contacts, agent });
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
