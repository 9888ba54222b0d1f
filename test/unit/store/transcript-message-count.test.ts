import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createMemoryLogger } from "../../../src/logging/logger.js";
import { openStateDatabase, type Database } from "../../../src/store/sqlite-database.js";
import {
  createTranscriptStore,
  type SessionStoreEntry,
  type TranscriptStore,
} from "../../../src/store/transcript-store.js";

/** `messageCount`: what a resume of a session should bring back, by dispatch's copy. */
let folder: string;
let db: Database;
let store: TranscriptStore;

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-message-count-"));
  db = openStateDatabase({ path: join(folder, "journal.db"), logger: createMemoryLogger() });
  store = createTranscriptStore({ db });
});
afterEach(async () => {
  db.close();
  await rm(folder, { recursive: true, force: true });
});

function entry(type: string, uuid?: string): SessionStoreEntry {
  return { type, ...(uuid ? { uuid } : {}), message: { content: "hi" } };
}

describe("messageCount", () => {
  it("counts the user and assistant messages of a session's main transcript", async () => {
    const key = { projectKey: "-home-me-transcripts-john-doe", sessionId: "s-1" };
    await store.append(key, [
      entry("user", "u1"),
      entry("assistant", "a1"),
      entry("queue-operation"),
      entry("custom-title"),
    ]);
    await store.append(key, [entry("assistant", "a1"), entry("user", "u2")]); // a replay and one more
    await store.append({ ...key, subpath: "subagents/agent-x" }, [entry("user", "x1")]);
    await store.append({ ...key, sessionId: "s-2" }, [entry("user", "y1")]);

    expect(store.messageCount("s-1")).toBe(3);
    expect(store.messageCount("s-2")).toBe(1);
    expect(store.messageCount("s-unknown")).toBe(0);
  });

  it("takes the project holding the most when a session is filed under two", async () => {
    await store.append({ projectKey: "-old", sessionId: "s-1" }, [
      entry("user", "u1"),
      entry("assistant", "a1"),
      entry("user", "u2"),
    ]);
    await store.append({ projectKey: "-new", sessionId: "s-1" }, [entry("user", "u3")]);
    expect(store.messageCount("s-1")).toBe(3);
  });
});
