/**
 * Property tests of the registry (issues 4 and 14): any sequence of sets, updates, removes,
 * flushes and clock ticks leaves memory, the rows, a reopened registry and the sessions.json
 * export in agreement with a plain model; the export is byte for byte what `serialiseRegistry`
 * makes of the entries (the incremental file image never drifts); names stay unique
 * case-insensitively; and once the clock passes a window, what that window covers is in the rows.
 */
import fc from "fast-check";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManualClock } from "../../support/manual-clock.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { asAgentSessionId, asChatId, type ChatId } from "../../../src/utils/ids.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { openRowRegistry } from "../../../src/store/row-registry.js";
import { openStateDatabase, type Database } from "../../../src/store/sqlite-database.js";
import { createSqliteRegistryRows } from "../../../src/store/sqlite-registry-rows.js";
import { classifyChange, type RegistryEntry } from "../../../src/store/registry.js";
import { serialiseRegistry } from "../../../src/store/registry-file-format.js";
import { makeEntry } from "./registry-contract.js";

const PROMPT_MS = 25;
const BOOKKEEPING_MS = 5_000;

// A few chats, so that sequences come back to the same ones: integer-like ids (an object would
// sort them first), an email, a group, and ids outside ASCII (UTF-8 is longer than UTF-16).
const CHAT_IDS = ["+15551234567", "12345", "7", "jane@example.com", "grüße", "👪"].map(asChatId);
// Valid names only (the grammar is tested elsewhere); "john-doe" twice so chats collide.
const NAMES = ["john-doe", "jane", "family-chat", "john-doe-2", "x"];

const isoTime = fc
  .integer({ min: Date.parse("2020-01-01"), max: Date.parse("2030-01-01") })
  .map((ms) => new Date(ms).toISOString());
const contactName = fc.oneof(
  fc.constant(null),
  fc.constantFrom("John Doe", "Zoë ✓", "中文", 'quote " and \\ slash'),
  fc.string({ maxLength: 12 }),
);
const bookkeepingPatch = fc.record(
  {
    last_message_time: fc.option(isoTime, { nil: null }),
    turns: fc.nat(1000),
    errors: fc.nat(10),
    restarts: fc.nat(10),
    channel: fc.option(fc.constantFrom("http", "imessage"), { nil: null }),
  },
  { requiredKeys: [] },
);
const resumePatch = fc.record(
  {
    session_id: fc.option(fc.uuid().map(asAgentSessionId), { nil: null }),
    previous_session_ids: fc.array(
      fc.record({
        session_id: fc.uuid().map(asAgentSessionId),
        replaced_at: isoTime,
        reason: fc.constantFrom("restart", "resume-failed"),
      }),
      { maxLength: 2 },
    ),
    tier: fc.constantFrom("favorite", "family", "admin"),
    contact_name: contactName,
  },
  { requiredKeys: [] },
);

type Command =
  | { kind: "set"; chatId: ChatId; name: string; patch: Partial<RegistryEntry>; future: boolean }
  | { kind: "update"; chatId: ChatId; patch: Partial<RegistryEntry> }
  | { kind: "remove"; chatId: ChatId }
  | { kind: "flush" }
  | { kind: "tick"; ms: number };

const chatId = fc.constantFrom(...CHAT_IDS);
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("set" as const),
      chatId,
      name: fc.constantFrom(...NAMES),
      patch: fc
        .tuple(bookkeepingPatch, resumePatch)
        .map(([left, right]) => ({ ...left, ...right })),
      future: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("update" as const),
      chatId,
      patch: fc.oneof(bookkeepingPatch, resumePatch),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("remove" as const), chatId }) },
  { weight: 1, arbitrary: fc.constant({ kind: "flush" as const }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("tick" as const),
      ms: fc.oneof(fc.integer({ min: 0, max: 40 }), fc.constantFrom(BOOKKEEPING_MS, 6_000)),
    }),
  },
);

/** The fields a resume depends on: what must reach the file within the prompt delay. */
function resumeView(entries: Iterable<[string, RegistryEntry]>) {
  return Object.fromEntries(
    Array.from(entries, ([id, entry]) => [
      id,
      {
        session_name: entry.session_name,
        session_id: entry.session_id,
        previous_session_ids: entry.previous_session_ids,
        tier: entry.tier,
        contact_name: entry.contact_name,
      },
    ]),
  );
}

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    if (error instanceof DispatchError) return error.code;
    throw error;
  }
  return undefined;
}

let folder: string;
let run = 0;
beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-registry-property-"));
});
afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

/** The rows as entries, by chat id. */
function rowsOf(db: Database): Map<ChatId, RegistryEntry> {
  const rows = db.prepare("SELECT chat_id, entry FROM registry").all() as {
    chat_id: ChatId;
    entry: string;
  }[];
  return new Map(rows.map((row) => [row.chat_id, JSON.parse(row.entry) as RegistryEntry]));
}

describe("RowRegistry properties", () => {
  it("agrees with a plain model through any sequence, in the rows, the export and after reopening", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 4, maxLength: 40 }), async (commands) => {
        run += 1;
        const runFolder = join(folder, `run-${run}`);
        await mkdir(runFolder);
        const path = join(runFolder, "sessions.json");
        const db = openStateDatabase({
          path: join(runFolder, "journal.db"),
          logger: createMemoryLogger(),
        });
        const clock = new ManualClock();
        const open = () =>
          openRowRegistry({
            rows: createSqliteRegistryRows({ db }),
            file: path,
            logger: createMemoryLogger(),
            clock,
            flushDelayMs: PROMPT_MS,
            bookkeepingDelayMs: BOOKKEEPING_MS,
            exportDelayMs: BOOKKEEPING_MS,
          });
        const registry = await open();
        /** Lets the writes a tick started finish. */
        const settle = async () => {
          for (let round = 0; round < 10; round += 1) {
            await new Promise((resolve) => setImmediate(resolve));
          }
          await registry.export!.write();
        };
        const model = new Map<ChatId, RegistryEntry>();
        let sinceResumeChange = Number.POSITIVE_INFINITY;
        let sinceAnyChange = Number.POSITIVE_INFINITY;

        for (const step of commands) {
          if (step.kind === "set") {
            const entry: RegistryEntry = {
              ...makeEntry(step.name, step.patch),
              ...(step.future ? { future_field: { kept: [1, "two"] } } : {}),
            };
            const existing = model.get(step.chatId);
            const nameHeld = [...model].some(
              ([other, held]) =>
                other !== step.chatId && held.session_name.toLowerCase() === step.name,
            );
            const refused = existing !== undefined ? existing.session_name !== step.name : nameHeld;
            const code = codeOf(() => registry.set(step.chatId, entry));
            expect(code).toBe(refused ? "registry_invalid_entry" : undefined);
            if (!refused) {
              const kind = classifyChange(existing, entry);
              if (kind === "resume") sinceResumeChange = 0;
              if (kind !== undefined) sinceAnyChange = 0;
              model.set(step.chatId, entry);
            }
          } else if (step.kind === "update") {
            const existing = model.get(step.chatId);
            const code = codeOf(() => registry.update(step.chatId, step.patch));
            expect(code).toBe(existing === undefined ? "registry_entry_missing" : undefined);
            if (existing !== undefined) {
              const next = { ...existing, ...step.patch };
              const kind = classifyChange(existing, next);
              if (kind === "resume") sinceResumeChange = 0;
              if (kind !== undefined) sinceAnyChange = 0;
              model.set(step.chatId, next);
            }
          } else if (step.kind === "remove") {
            const removed = registry.remove(step.chatId);
            expect(removed).toBe(model.delete(step.chatId));
            if (removed) {
              sinceResumeChange = 0;
              sinceAnyChange = 0;
            }
          } else if (step.kind === "flush") {
            await registry.flush();
            sinceResumeChange = Number.POSITIVE_INFINITY;
            sinceAnyChange = Number.POSITIVE_INFINITY;
          } else {
            clock.advance(step.ms);
            sinceResumeChange += step.ms;
            sinceAnyChange += step.ms;
            await settle();
            if (sinceResumeChange >= PROMPT_MS && sinceResumeChange !== Infinity) {
              expect(resumeView(rowsOf(db))).toEqual(resumeView(model));
            }
            if (sinceAnyChange >= BOOKKEEPING_MS && sinceAnyChange !== Infinity) {
              expect(rowsOf(db)).toEqual(model);
              expect(await readFile(path, "utf8")).toBe(serialiseRegistry(model));
            }
          }
          // Memory always matches the model, and names stay unique in any case.
          expect(new Map(registry.entries())).toEqual(model);
          const names = [...registry.entries()].map(([, entry]) => entry.session_name);
          expect(new Set(names.map((name) => name.toLowerCase())).size).toBe(names.length);
          for (const name of names) expect(registry.isNameTaken(name.toUpperCase())).toBe(true);
        }

        await registry.close();
        expect(rowsOf(db)).toEqual(model);
        expect(await readFile(path, "utf8")).toBe(serialiseRegistry(model));

        const reopened = await open();
        expect(new Map(reopened.entries())).toEqual(model);
        await reopened.close();
        db.close();
      }),
      { numRuns: 100 },
    );
  }, 120_000);

  it("classifies a change by the fields it touches", () => {
    const bookkeeping = ["last_message_time", "turns", "errors", "restarts", "channel"];
    fc.assert(
      fc.property(bookkeepingPatch, resumePatch, (patchBookkeeping, patchResume) => {
        const before = makeEntry("john-doe");
        const touched = (patch: object) =>
          Object.entries(patch).some(
            ([key, value]) =>
              JSON.stringify(value) !== JSON.stringify(before[key as keyof RegistryEntry]),
          );
        const onlyBookkeeping = { ...before, ...patchBookkeeping };
        expect(classifyChange(before, onlyBookkeeping)).toBe(
          touched(patchBookkeeping) ? "bookkeeping" : undefined,
        );
        const withResume = { ...onlyBookkeeping, ...patchResume };
        if (touched(patchResume)) expect(classifyChange(before, withResume)).toBe("resume");
        expect(Object.keys(patchBookkeeping).every((key) => bookkeeping.includes(key))).toBe(true);
        expect(classifyChange(before, { ...before })).toBeUndefined();
        expect(classifyChange(undefined, before)).toBe("resume");
        expect(classifyChange(before, undefined)).toBe("resume");
      }),
    );
  });
});
