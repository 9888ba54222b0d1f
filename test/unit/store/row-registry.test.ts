/**
 * The row registry's writes: coalesced by what is at stake (a resume change within the prompt
 * delay and durably, bookkeeping within its window), only the changed chats' rows, one write at a
 * time, and a failed write kept and tried again. On the SQLite rows, watched by a recorder.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../support/manual-clock.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { asAgentSessionId, asChatId, type ChatId } from "../../../src/utils/ids.js";
import type { RegistryRowChange, RegistryRows } from "../../../src/store/registry-rows.js";
import { openRowRegistry, type RowRegistryOptions } from "../../../src/store/row-registry.js";
import { openStateDatabase, type Database } from "../../../src/store/sqlite-database.js";
import { createSqliteRegistryRows } from "../../../src/store/sqlite-registry-rows.js";
import { FAMILY, JANE, JOHN, makeEntry } from "./registry-contract.js";

const PROMPT_MS = 25;
const BOOKKEEPING_MS = 5_000;

let folder: string;
let db: Database;
beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-row-registry-"));
  db = openStateDatabase({ path: join(folder, "journal.db"), logger: createMemoryLogger() });
});
afterEach(async () => {
  if (db.open) db.close();
  await rm(folder, { recursive: true, force: true });
});

interface Batch {
  changes: RegistryRowChange[];
  durable: boolean;
}

/** SQLite rows that record each batch, can be made to fail, and announce each write. */
function recordingRows() {
  const rows = createSqliteRegistryRows({ db });
  const batches: Batch[] = [];
  let failure: Error | undefined;
  let running = 0;
  let maxRunning = 0;
  let announce: (() => void) | undefined;
  const recorder: RegistryRows = {
    ...rows,
    async write(changes, options) {
      running += 1;
      maxRunning = Math.max(maxRunning, running);
      try {
        await new Promise((resolve) => setImmediate(resolve));
        if (failure) throw failure;
        await rows.write(changes, options);
        batches.push({ changes: [...changes], durable: options.durable });
        announce?.();
      } finally {
        running -= 1;
      }
    },
  };
  return {
    rows: recorder,
    batches,
    fail(error: Error | undefined) {
      failure = error;
    },
    get maxRunning() {
      return maxRunning;
    },
    /** Resolves after the next committed batch. */
    nextWrite() {
      return new Promise<void>((resolve) => (announce = resolve));
    },
  };
}

async function open(options: Partial<RowRegistryOptions> = {}) {
  const recorder = recordingRows();
  const clock = new ManualClock();
  const logger = createMemoryLogger();
  const registry = await openRowRegistry({
    rows: recorder.rows,
    logger,
    clock,
    flushDelayMs: PROMPT_MS,
    bookkeepingDelayMs: BOOKKEEPING_MS,
    ...options,
  });
  return { registry, recorder, clock, logger };
}

const chatsOf = (batch: Batch | undefined): ChatId[] =>
  (batch?.changes ?? []).map(([chatId]) => chatId);

/** Lets timer callbacks that started a write get as far as they can. */
async function settle(): Promise<void> {
  for (let round = 0; round < 10; round += 1) await new Promise((resolve) => setImmediate(resolve));
}

describe("RowRegistry: prompt and bookkeeping writes", () => {
  it("writes a new chat within the prompt delay, durably, and only its row", async () => {
    const { registry, recorder, clock } = await open();
    registry.set(JOHN, makeEntry("john-doe"));
    await registry.flush();
    const written = recorder.nextWrite();
    registry.set(JANE, makeEntry("jane-roe"));
    clock.advance(PROMPT_MS);
    await written;
    expect(chatsOf(recorder.batches[1])).toEqual([JANE]);
    expect(recorder.batches[1]?.durable).toBe(true);
    await registry.close();
  });

  it("writes a bookkeeping-only change when its window ends, not durably", async () => {
    const { registry, recorder, clock } = await open();
    registry.set(JOHN, makeEntry("john-doe"));
    await registry.flush();
    registry.update(JOHN, { turns: 1, last_message_time: "2026-02-07T14:30:00.000Z" });
    registry.update(JOHN, { errors: 1, restarts: 1, channel: "imessage" });
    clock.advance(BOOKKEEPING_MS - 1);
    await settle();
    expect(recorder.batches).toHaveLength(1);
    const written = recorder.nextWrite();
    clock.advance(1);
    await written;
    expect(recorder.batches[1]).toMatchObject({ durable: false });
    expect(recorder.batches[1]?.changes[0]?.[1]).toMatchObject({
      turns: 1,
      errors: 1,
      restarts: 1,
      channel: "imessage",
    });
    await registry.close();
  });

  it("brings pending bookkeeping forward with a new session id, in one durable write", async () => {
    const { registry, recorder, clock } = await open();
    registry.set(JOHN, makeEntry("john-doe"));
    registry.set(JANE, makeEntry("jane-roe"));
    await registry.flush();
    registry.update(JANE, { turns: 7 }); // bookkeeping: due in 5 s
    clock.advance(1_000);
    registry.update(JOHN, { session_id: asAgentSessionId("abc-123") });
    const written = recorder.nextWrite();
    clock.advance(PROMPT_MS);
    await written;
    expect(chatsOf(recorder.batches[1]).sort()).toEqual([JOHN, JANE].sort());
    expect(recorder.batches[1]?.durable).toBe(true);
    clock.advance(BOOKKEEPING_MS);
    await settle();
    expect(recorder.batches).toHaveLength(2);
    await registry.close();
  });

  it("coalesces 1,000 updates of one chat into one row written once", async () => {
    const { registry, recorder } = await open();
    registry.set(JOHN, makeEntry("john-doe"));
    for (let turn = 1; turn <= 1000; turn += 1) registry.update(JOHN, { turns: turn });
    await registry.flush();
    expect(recorder.batches).toHaveLength(1);
    expect(recorder.batches[0]?.changes).toHaveLength(1);
    expect(recorder.batches[0]?.changes[0]?.[1]?.turns).toBe(1000);
    await registry.close();
  });

  it("treats an update that changes nothing as no change at all", async () => {
    const { registry, recorder, clock } = await open();
    registry.set(JOHN, makeEntry("john-doe", { session_id: asAgentSessionId("abc") }));
    await registry.flush();
    registry.update(JOHN, { session_id: asAgentSessionId("abc"), channel: null });
    clock.advance(BOOKKEEPING_MS);
    await registry.flush();
    expect(recorder.batches).toHaveLength(1);
    await registry.close();
  });

  it("never runs two writes at once, and a flush waits for the changes made before it", async () => {
    const { registry, recorder } = await open();
    const flushes: Promise<void>[] = [];
    for (let index = 0; index < 20; index += 1) {
      registry.set(asChatId(`+1555000${index}`), makeEntry(`chat-${index}`));
      flushes.push(registry.flush());
    }
    await Promise.all(flushes);
    expect(recorder.maxRunning).toBe(1);
    const written = recorder.batches.flatMap((batch) => chatsOf(batch));
    expect(new Set(written).size).toBe(20);
    await registry.close();
  });

  it("close() writes pending bookkeeping, durably", async () => {
    const { registry, recorder } = await open();
    registry.set(JOHN, makeEntry("john-doe"));
    await registry.flush();
    registry.update(JOHN, { turns: 2 });
    await registry.close();
    expect(recorder.batches.at(-1)).toMatchObject({ durable: true });
    expect(recorder.batches.at(-1)?.changes[0]?.[1]?.turns).toBe(2);
  });

  it("rejects a negative delay, naming the option and the value", async () => {
    await expect(open({ bookkeepingDelayMs: -1 })).rejects.toMatchObject({
      code: "invalid_option",
      message: expect.stringContaining("`bookkeepingDelayMs`") as unknown,
    });
  });
});

describe("RowRegistry: write failures", () => {
  const full = () =>
    new DispatchError("journal_full", "Could not write the registry: the disk is full.");

  it("rejects flush with registry_write_failed, logs it, keeps the change and writes it later", async () => {
    const { registry, recorder, logger } = await open();
    recorder.fail(full());
    registry.set(JOHN, makeEntry("john-doe"));
    const failure = await registry.flush().catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: "registry_write_failed" });
    expect((failure as DispatchError).message).toContain("the disk is full");
    expect((failure as DispatchError).message).toContain(join(folder, "journal.db"));
    expect(
      logger.records.find((record) => record.message === "registry-write-failed"),
    ).toMatchObject({ level: "error", fields: { code: "journal_full", chats: 1 } });
    // A change made meanwhile joins the retried one.
    registry.set(FAMILY, makeEntry("family-chat"));
    recorder.fail(undefined);
    await registry.flush();
    expect(chatsOf(recorder.batches[0]).sort()).toEqual([JOHN, FAMILY].sort());
    expect(recorder.batches[0]?.durable).toBe(true);
    await registry.close();
  });

  it("retries a failed background write by itself", async () => {
    const { registry, recorder, clock } = await open();
    recorder.fail(full());
    registry.set(JOHN, makeEntry("john-doe"));
    clock.advance(PROMPT_MS);
    await settle();
    expect(registry.stats.failedWrites).toBe(1);
    recorder.fail(undefined);
    const written = recorder.nextWrite();
    clock.advance(1_000);
    await written;
    expect(chatsOf(recorder.batches[0])).toEqual([JOHN]);
    await registry.close();
  });

  it("a close() that failed to write can be retried", async () => {
    const { registry, recorder } = await open();
    registry.set(JOHN, makeEntry("john-doe"));
    recorder.fail(full());
    await expect(registry.close()).rejects.toMatchObject({ code: "registry_write_failed" });
    recorder.fail(undefined);
    await registry.close();
    expect(chatsOf(recorder.batches[0])).toEqual([JOHN]);
  });
});
