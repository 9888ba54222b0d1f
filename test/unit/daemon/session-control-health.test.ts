/**
 * `/healthz` and `/metrics` at ten thousand registered chats (issue 5): a scrape took ~750 ms in
 * the scale run because `health()` built every registered chat's status. They now read counts,
 * and must not walk the registry; `GET /v1/sessions` still lists every chat.
 */
import { describe, expect, it } from "vitest";
import { asChatId, type ChatId } from "../../../src/utils/ids.js";
import { createSessionControl } from "../../../src/daemon/session-control.js";
import { MemoryRegistry } from "../../../src/store/memory-registry.js";
import type { RegistryEntry } from "../../../src/store/registry.js";
import { makeEntry } from "../../support/registry-entry.js";
import { startInbox, testConfig, testContacts, useSqliteJournal } from "../../support/inbox-rig.js";

const JOHN = "+15551234567";
const REGISTERED = 10_000;

const config = testConfig();
const contacts = testContacts(config, [{ name: "John Doe", tier: "favorite", handles: [JOHN] }]);

/** A registry that counts walks over all of its entries. */
class CountingRegistry extends MemoryRegistry {
  walks = 0;
  override entries(): IterableIterator<[ChatId, RegistryEntry]> {
    this.walks += 1;
    return super.entries();
  }
}

const sqlite = useSqliteJournal("dispatch-health-");

function start() {
  const registry = new CountingRegistry();
  for (let index = 0; index < REGISTERED; index += 1) {
    registry.load(asChatId(`+1666${String(index).padStart(7, "0")}`), makeEntry(`chat-${index}`));
  }
  const journal = sqlite.journal;
  const { inbox, manager, metrics, clock } = startInbox({ journal, config, contacts, registry });
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
