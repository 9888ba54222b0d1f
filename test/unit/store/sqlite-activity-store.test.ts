import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DispatchError } from "../../../src/utils/errors.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import type { ActivityEvent, ActivityStore } from "../../../src/store/activity-store.js";
import { createSqliteActivityStore } from "../../../src/store/sqlite-activity-store.js";
import { openStateDatabase, type Database } from "../../../src/store/sqlite-database.js";

const JOHN = "+15551234567";
const START = Date.parse("2026-03-01T12:00:00.000Z");

let folder: string;
let path: string;
let db: Database | undefined;
let store: ActivityStore;

beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-activity-"));
  path = join(folder, "journal.db");
  store = open();
});
afterEach(async () => {
  if (db?.open) db.close();
  await rm(folder, { recursive: true, force: true });
});

function open(): ActivityStore {
  db = openStateDatabase({ path, logger: createMemoryLogger() });
  return createSqliteActivityStore({ db });
}

const EVENTS: ActivityEvent[] = [
  { kind: "message", atMs: START, chatId: JOHN },
  { kind: "reply", atMs: START + 1_500, chatId: JOHN, latencyMs: 1_500 },
  { kind: "reply", atMs: START + 2_000, chatId: JOHN, latencyMs: null },
  { kind: "error", atMs: START + 3_000, chatId: JOHN, code: "turn_error", message: "API 400" },
  { kind: "restart", atMs: START + 4_000, chatId: JOHN, reason: "requested from the dashboard" },
  { kind: "restart", atMs: START + 5_000, chatId: null, reason: "dispatch started again" },
];

describe("createSqliteActivityStore", () => {
  it("gives back every kind of event as it was appended, oldest first, after a reopen", () => {
    for (const event of [...EVENTS].reverse()) store.append(event);
    db!.close();
    store = open();
    expect(store.since(START)).toEqual(EVENTS);
    expect(store.since(START + 3_000)).toEqual(EVENTS.slice(3));
  });

  it("prunes the events before a bound, and only those", () => {
    for (const event of EVENTS) store.append(event);
    expect(store.prune(START + 2_000)).toBe(2);
    expect(store.since(0)).toEqual(EVENTS.slice(2));
  });

  it("fails as a journal error naming the file when the database is gone", () => {
    db!.close();
    let caught: unknown;
    try {
      store.append(EVENTS[0]!);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DispatchError);
    expect((caught as DispatchError).message).toContain(path);
  });
});
