import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../../support/manual-clock.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { asAgentSessionId, asChatId } from "../../../src/utils/ids.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { writeFileDurable } from "../../../src/store/durable-file.js";
import {
  openJsonFileRegistry,
  type JsonFileRegistryOptions,
} from "../../../src/store/json-file-registry.js";
import type { RegistryEntry } from "../../../src/store/registry.js";
import { describeRegistryContract, FAMILY, JANE, JOHN, makeEntry } from "./registry-contract.js";

let folder: string;
let path: string;
beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), "dispatch-registry-"));
  path = join(folder, "state", "sessions.json");
});
afterEach(async () => {
  await rm(folder, { recursive: true, force: true });
});

function open(options: Partial<JsonFileRegistryOptions> = {}) {
  const logger = createMemoryLogger();
  return openJsonFileRegistry({ path, logger, ...options }).then((registry) => ({
    registry,
    logger,
  }));
}

interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
}
function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((settle) => (resolve = settle));
  return { promise, resolve };
}

/** The written data as text (the registry hands writers a reused Buffer: read it at once). */
function textOf(data: string | Buffer): string {
  return typeof data === "string" ? data : data.toString("utf8");
}

/** A durable writer that records calls and the most writes ever running at once. */
function countingWriter() {
  const stats = { calls: [] as string[], running: 0, maxRunning: 0 };
  const writeFile = async (target: string, data: string | Buffer) => {
    stats.calls.push(target);
    stats.running += 1;
    stats.maxRunning = Math.max(stats.maxRunning, stats.running);
    try {
      await writeFileDurable(target, data);
    } finally {
      stats.running -= 1;
    }
  };
  return { stats, writeFile };
}

async function seedFile(content: unknown, target = path): Promise<void> {
  await mkdir(join(folder, "state"), { recursive: true });
  await writeFile(target, typeof content === "string" ? content : JSON.stringify(content));
}

const seedEntry = {
  session_name: "john-doe",
  contact_name: "John Doe",
  tier: "favorite",
  session_id: "abc-123-def",
  created_at: "2026-02-01T10:00:00.000Z",
  last_message_time: "2026-02-07T14:30:00.000Z",
};

async function openError(options: Partial<JsonFileRegistryOptions> = {}): Promise<DispatchError> {
  const failure = await open(options).catch((error: unknown) => error);
  if (!(failure instanceof DispatchError)) throw new Error(`expected a DispatchError`);
  return failure;
}

describeRegistryContract("json file", {
  create: async () => (await open()).registry,
});

describe("JsonFileRegistry: loading", () => {
  it("starts empty when the file is missing, creating the folder with mode 0700", async () => {
    const { registry } = await open();
    expect(registry.size).toBe(0);
    expect((await stat(join(folder, "state"))).mode & 0o777).toBe(0o700);
    await registry.close();
  });

  it("round-trips entries through the file: sorted chat ids, fixed key order, mode 0600", async () => {
    const { registry } = await open();
    const numeric = asChatId("12345"); // an object would sort this key first; the file must not
    registry.set(numeric, makeEntry("numbers", { chat_kind: "group" }));
    registry.set(JOHN, makeEntry("john-doe", { turns: 2 }));
    registry.set(FAMILY, makeEntry("family", { chat_kind: "group" }));
    await registry.close();

    const text = await readFile(path, "utf8");
    expect(text.endsWith("}\n")).toBe(true);
    const topKeys = [...text.matchAll(/^ {2}"([^"]+)": \{$/gm)].map((match) => match[1]);
    expect(topKeys).toEqual(["+15551234567", "12345", "chat123456789"]);
    expect(Object.keys((JSON.parse(text) as Record<string, object>)[JOHN]!)).toEqual([
      "session_name",
      "contact_name",
      "tier",
      "session_id",
      "created_at",
      "last_message_time",
      "chat_kind",
      "channel",
      "previous_session_ids",
      "turns",
      "errors",
      "restarts",
    ]);
    expect((await stat(path)).mode & 0o777).toBe(0o600);

    const { registry: reopened } = await open();
    expect(reopened.get(JOHN)).toEqual(makeEntry("john-doe", { turns: 2 }));
    expect(reopened.get(numeric)?.session_name).toBe("numbers");
    expect(reopened.size).toBe(3);
    await reopened.close();
  });

  it("loads a seed file, filling our additions with defaults", async () => {
    await seedFile({
      "+15551234567": seedEntry,
      chat123456789: { ...seedEntry, session_name: "family-chat", contact_name: null },
    });
    const { registry } = await open();
    expect(registry.get(JOHN)).toEqual({
      ...seedEntry,
      chat_kind: "individual",
      channel: null,
      previous_session_ids: [],
      turns: 0,
      errors: 0,
      restarts: 0,
    });
    expect(registry.get(FAMILY)?.chat_kind).toBe("group");
    await registry.close();
  });

  it("keeps unknown keys of an entry when it rewrites the file", async () => {
    await seedFile({ [JOHN]: { ...seedEntry, future_field: { nested: [1, 2] } } });
    const { registry } = await open();
    registry.update(JOHN, { turns: 7 });
    await registry.close();
    const written = JSON.parse(await readFile(path, "utf8")) as Record<string, object>;
    expect(written[JOHN]).toMatchObject({ turns: 7, future_field: { nested: [1, 2] } });
    expect(Object.keys(written[JOHN]!).at(-1)).toBe("future_field");
  });

  it("writes a last good copy after loading and on close", async () => {
    const original = JSON.stringify({ [JOHN]: seedEntry });
    await seedFile(original);
    const { registry } = await open();
    expect(await readFile(`${path}.last-good`, "utf8")).toBe(original);
    // Copied by the kernel through a temp file that is gone; private, whatever the original's mode.
    expect((await readdir(join(folder, "state"))).sort()).toEqual([
      "sessions.json",
      "sessions.json.last-good",
    ]);
    expect((await stat(`${path}.last-good`)).mode & 0o777).toBe(0o600);
    registry.update(JOHN, { turns: 4 });
    await registry.close();
    expect(await readFile(`${path}.last-good`, "utf8")).toBe(await readFile(path, "utf8"));
    expect(await readFile(path, "utf8")).toContain('"turns": 4');
  });

  it("removes temp files a killed writer left behind, and nothing else", async () => {
    await seedFile({ [JOHN]: seedEntry });
    const state = join(folder, "state");
    for (const name of [
      "sessions.json.1234567",
      "sessions.json.last-good.99",
      "sessions.json.bak",
    ]) {
      await writeFile(join(state, name), "{ half a fi");
    }
    const { registry, logger } = await open();
    expect(registry.size).toBe(1);
    expect((await readdir(state)).sort()).toEqual([
      "sessions.json",
      "sessions.json.bak",
      "sessions.json.last-good",
    ]);
    expect(logger.records.some((record) => record.message === "registry temp-file remove")).toBe(
      true,
    );
    await registry.close();
  });

  it("loads a file where two sessions share a name, with a warning", async () => {
    await seedFile({ [JOHN]: seedEntry, [JANE]: { ...seedEntry, session_id: "other-session" } });
    const { registry, logger } = await open();
    expect(registry.size).toBe(2);
    const warning = logger.records.find((record) => record.level === "warn");
    expect(warning?.fields).toMatchObject({ names: ["john-doe"] });
    await registry.close();
  });

  it("loads the chats of one person's session (one name, one session id) without a warning", async () => {
    await seedFile({ [JOHN]: seedEntry, [JANE]: seedEntry });
    const { registry, logger } = await open();
    expect(registry.chatsNamed("john-doe")).toHaveLength(2);
    expect(logger.records.filter((record) => record.level === "warn")).toEqual([]);
    await registry.close();
  });

  it("starts empty, with a warning, when only the last good copy exists", async () => {
    await seedFile({ [JOHN]: seedEntry }, `${path}.last-good`);
    const { registry, logger } = await open();
    expect(registry.size).toBe(0);
    expect(logger.records.find((record) => record.level === "warn")?.fields).toMatchObject({
      lastGood: `${path}.last-good`,
    });
    await registry.close();
    // Opening and closing without changes does not overwrite the last good copy.
    expect(await readFile(`${path}.last-good`, "utf8")).toContain("abc-123-def");
  });

  it("reads an empty session_id as null", async () => {
    await seedFile({ [JOHN]: { ...seedEntry, session_id: "" } });
    const { registry } = await open();
    expect(registry.get(JOHN)?.session_id).toBeNull();
    await registry.close();
  });

  it("rejects a negative flush delay, naming the option and the value", async () => {
    const error = await openError({ flushDelayMs: -5 });
    expect(error.code).toBe("invalid_option");
    expect(error.message).toContain("`flushDelayMs`");
    expect(error.message).toContain("`-5`");
  });
});

describe("JsonFileRegistry: a file that does not parse", () => {
  const clock = new ManualClock(Date.parse("2026-03-04T05:06:07.089Z"));
  const corruptCopy = () => `${path}.corrupt-2026-03-04T05-06-07.089Z`;

  it("loads the last good copy, keeping the bad file aside byte for byte", async () => {
    const bad = '{ "+15551234567": { "session_na';
    await seedFile(bad);
    await seedFile({ [JOHN]: seedEntry }, `${path}.last-good`);

    const { registry, logger } = await open({ clock });

    expect(registry.get(JOHN)?.session_id).toBe("abc-123-def");
    expect(await readFile(corruptCopy(), "utf8")).toBe(bad);
    const rewritten = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
    expect(Object.keys(rewritten)).toEqual([JOHN]);
    const error = logger.records.find((record) => record.level === "error");
    expect(error?.fields).toMatchObject({
      path,
      keptAs: corruptCopy(),
      lastGood: `${path}.last-good`,
    });
    await registry.close();
  });

  it.each([
    ["bad JSON", "not json at all"],
    ["a truncated file", JSON.stringify({ [JOHN]: seedEntry }).slice(0, 60)],
    ["an empty file", ""],
    ["an array", "[]"],
    ["a schema failure", JSON.stringify({ [JOHN]: { ...seedEntry, turns: "many" } })],
    ["a missing field", JSON.stringify({ [JOHN]: { ...seedEntry, tier: undefined } })],
  ])("refuses %s with no last good copy, touching nothing", async (_label, content) => {
    await seedFile(content);
    const error = await openError({ clock });
    expect(error.code).toBe("registry_corrupt");
    expect(error.message).toContain(path);
    expect(error.message).toContain(`${path}.last-good does not exist`);
    expect(error.message).toContain("Restore");
    expect(await readFile(path, "utf8")).toBe(content);
    expect(await readdir(join(folder, "state"))).toEqual(["sessions.json"]);
  });

  it("names the parse error and the broken field", async () => {
    await seedFile({ [JOHN]: { ...seedEntry, turns: "many" } });
    const error = await openError();
    expect(error.message).toMatch(/chat "\+15551234567": turns: .*expected number/);
  });

  it("refuses when the last good copy is bad too, saying why", async () => {
    await seedFile("{ nope");
    await seedFile("[]", `${path}.last-good`);
    const error = await openError({ clock });
    expect(error.code).toBe("registry_corrupt");
    expect(error.message).toContain("is not usable either");
    expect(error.message).toContain("not valid JSON");
    expect(await readFile(path, "utf8")).toBe("{ nope");
    expect(await readFile(`${path}.last-good`, "utf8")).toBe("[]");
  });

  it.each([
    ["../../etc", "a path"],
    ["a/b", "a slash"],
    ["a\\b", "a backslash"],
    ["a\u0000b", "NUL"],
    ["a\nb", "a control character"],
    ["John-Doe", "upper case"],
    ["x".repeat(65), "65 characters"],
  ])("refuses the unsafe session name %j (%s), naming the chat", async (name) => {
    await seedFile({ [JOHN]: seedEntry, [JANE]: { ...seedEntry, session_name: name } });
    const error = await openError();
    expect(error.code).toBe("registry_corrupt");
    expect(error.message).toContain(`chat "${JANE}": session_name`);
  });
});

describe("JsonFileRegistry: writing", () => {
  it("coalesces a burst of 1,000 updates into one write", async () => {
    const writer = countingWriter();
    const { registry } = await open({ writeFile: writer.writeFile });
    registry.set(JOHN, makeEntry("john-doe"));
    for (let turn = 1; turn <= 1000; turn += 1) registry.update(JOHN, { turns: turn });
    await registry.flush();
    expect(registry.stats.writes).toBe(1);
    expect(writer.stats.calls.filter((target) => target === path)).toHaveLength(1);
    expect(await readFile(path, "utf8")).toContain('"turns": 1000');
    await registry.close();
  });

  it("keeps writes bounded when updates trickle in, and never runs two at once", async () => {
    const writer = countingWriter();
    const { registry } = await open({ writeFile: writer.writeFile, flushDelayMs: 25 });
    registry.set(JOHN, makeEntry("john-doe"));
    const started = performance.now();
    for (let turn = 1; turn <= 1000; turn += 1) {
      registry.update(JOHN, { turns: turn });
      if (turn % 10 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await registry.flush();
    const elapsedMs = performance.now() - started;
    // At most one write per flush delay, plus the final flush.
    expect(registry.stats.writes).toBeLessThanOrEqual(Math.ceil(elapsedMs / 25) + 2);
    expect(registry.stats.writes).toBeLessThan(50);
    expect(writer.stats.maxRunning).toBe(1);
    expect(await readFile(path, "utf8")).toContain('"turns": 1000');
    await registry.close();
  });

  it("writes on its own after the flush delay", async () => {
    const written = deferred<string>();
    const { registry } = await open({
      flushDelayMs: 5,
      writeFile: async (target, data) => {
        await writeFileDurable(target, data);
        written.resolve(textOf(data));
      },
    });
    registry.set(JOHN, makeEntry("john-doe"));
    expect(await written.promise).toContain('"session_name": "john-doe"');
    await registry.close();
  });

  it("writes nothing when nothing changed", async () => {
    const writer = countingWriter();
    const { registry } = await open({ writeFile: writer.writeFile });
    await registry.flush();
    await registry.flush();
    expect(writer.stats.calls).toEqual([]);
    expect(registry.stats.writes).toBe(0);
    await registry.close();
  });

  it("flush during a write waits for it, then writes the later changes", async () => {
    const gate = deferred();
    const firstStarted = deferred();
    const snapshots: string[] = [];
    let running = 0;
    const { registry } = await open({
      writeFile: async (target, data) => {
        running += 1;
        expect(running).toBe(1);
        if (target === path) snapshots.push(textOf(data));
        if (snapshots.length === 1) {
          firstStarted.resolve();
          await gate.promise;
        }
        await writeFileDurable(target, data);
        running -= 1;
      },
    });
    registry.set(JOHN, makeEntry("john-doe"));
    const first = registry.flush();
    await firstStarted.promise;

    registry.update(JOHN, { turns: 1 });
    let secondDone = false;
    const second = registry.flush().then(() => (secondDone = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(secondDone).toBe(false); // still waiting for the first write
    gate.resolve();
    await Promise.all([first, second]);

    expect(snapshots).toHaveLength(2);
    expect(snapshots[0]).toContain('"turns": 0');
    expect(snapshots[1]).toContain('"turns": 1');
    expect(await readFile(path, "utf8")).toContain('"turns": 1');
    await registry.close();
  });

  it("concurrent flush calls share one write", async () => {
    const writer = countingWriter();
    const { registry } = await open({ writeFile: writer.writeFile });
    registry.set(JOHN, makeEntry("john-doe"));
    await Promise.all([registry.flush(), registry.flush(), registry.flush(), registry.flush()]);
    expect(registry.stats.writes).toBe(1);
    expect(writer.stats.calls).toEqual([path]);
    await registry.close();
  });
});

describe("JsonFileRegistry: prompt and bookkeeping writes", () => {
  const BOOKKEEPING_MS = 5_000;
  const PROMPT_MS = 25;

  /** A registry on a manual clock whose writes are announced one by one. */
  async function openOnClock() {
    const clock = new ManualClock();
    const writes: string[] = [];
    let announce = deferred<string>();
    const { registry } = await open({
      clock,
      flushDelayMs: PROMPT_MS,
      bookkeepingDelayMs: BOOKKEEPING_MS,
      writeFile: async (target, data) => {
        await writeFileDurable(target, data);
        if (target !== path) return;
        writes.push(textOf(data));
        const written = announce;
        announce = deferred<string>();
        written.resolve(textOf(data));
      },
    });
    return {
      registry,
      clock,
      writes,
      /** Resolves with the text of the next write of the registry file. */
      nextWrite: () => announce.promise,
    };
  }

  /** Lets timer callbacks that started a write get as far as they can. */
  async function settle(): Promise<void> {
    for (let round = 0; round < 5; round += 1)
      await new Promise((resolve) => setImmediate(resolve));
  }

  it("writes a bookkeeping-only change only when its window ends", async () => {
    const { registry, clock, writes, nextWrite } = await openOnClock();
    registry.set(JOHN, makeEntry("john-doe"));
    await registry.flush();
    expect(writes).toHaveLength(1);

    registry.update(JOHN, { turns: 1, last_message_time: "2026-02-07T14:30:00.000Z" });
    registry.update(JOHN, { errors: 1, restarts: 1, channel: "imessage" });
    clock.advance(BOOKKEEPING_MS - 1);
    await settle();
    expect(writes).toHaveLength(1);

    const written = nextWrite();
    clock.advance(1);
    const text = await written;
    expect(writes).toHaveLength(2);
    expect(JSON.parse(text)).toMatchObject({
      [JOHN]: { turns: 1, errors: 1, restarts: 1, channel: "imessage" },
    });
    await registry.close();
  });

  it.each([
    ["a new session id", { session_id: asAgentSessionId("abc-123") }],
    [
      "a replaced session",
      {
        previous_session_ids: [
          {
            session_id: asAgentSessionId("old"),
            replaced_at: "2026-02-07T14:30:00.000Z",
            reason: "restart",
          },
        ],
      },
    ],
    ["a new tier", { tier: "family" }],
    ["a new contact name", { contact_name: "Johnny" }],
  ])(
    "writes %s within the prompt delay, taking pending bookkeeping along",
    async (_label, patch) => {
      const { registry, clock, writes, nextWrite } = await openOnClock();
      registry.set(JOHN, makeEntry("john-doe"));
      await registry.flush();

      registry.update(JOHN, { turns: 7 }); // bookkeeping: due in 5 s
      clock.advance(1_000);
      registry.update(JOHN, patch); // brings the write forward
      const written = nextWrite();
      clock.advance(PROMPT_MS);
      const onDisk = JSON.parse(await written) as Record<string, RegistryEntry>;
      expect(onDisk[JOHN]).toMatchObject({ ...patch, turns: 7 });

      // The bookkeeping timer was replaced, not left to write the same state again.
      clock.advance(BOOKKEEPING_MS);
      await settle();
      expect(writes).toHaveLength(2);
      await registry.close();
    },
  );

  it("writes a new chat and a removed one within the prompt delay", async () => {
    const { registry, clock, nextWrite } = await openOnClock();
    let written = nextWrite();
    registry.set(JOHN, makeEntry("john-doe"));
    clock.advance(PROMPT_MS);
    expect(Object.keys(JSON.parse(await written) as object)).toEqual([JOHN]);

    written = nextWrite();
    registry.remove(JOHN);
    clock.advance(PROMPT_MS);
    expect(await written).toBe("{}\n");
    await registry.close();
  });

  it("keeps a prompt write's timer when bookkeeping follows it", async () => {
    const { registry, clock, nextWrite } = await openOnClock();
    const written = nextWrite();
    registry.set(JOHN, makeEntry("john-doe"));
    registry.update(JOHN, { turns: 3 });
    clock.advance(PROMPT_MS);
    expect(await written).toContain('"turns": 3');
    await registry.close();
  });

  it("flush() writes pending bookkeeping at once, and close() too", async () => {
    const { registry, writes } = await openOnClock();
    registry.set(JOHN, makeEntry("john-doe"));
    registry.update(JOHN, { turns: 1 });
    await registry.flush();
    expect(writes.at(-1)).toContain('"turns": 1');

    registry.update(JOHN, { turns: 2 });
    await registry.close(); // no clock advance: close() writes it
    expect(writes.at(-1)).toContain('"turns": 2');
    expect(await readFile(path, "utf8")).toContain('"turns": 2');
  });

  it("treats an update that changes nothing as no change at all", async () => {
    const { registry, clock, writes } = await openOnClock();
    registry.set(JOHN, makeEntry("john-doe", { session_id: asAgentSessionId("abc") }));
    await registry.flush();
    const stored = registry.get(JOHN);

    // What the manager does after every turn: the same session id, a channel it already had.
    registry.update(JOHN, { session_id: asAgentSessionId("abc"), channel: null });
    registry.set(JOHN, makeEntry("john-doe", { session_id: asAgentSessionId("abc") }));
    expect(registry.get(JOHN)).toBe(stored);
    clock.advance(BOOKKEEPING_MS);
    await registry.flush();
    expect(writes).toHaveLength(1);
    await registry.close();
  });

  it("rejects a negative bookkeeping delay, naming the option and the value", async () => {
    const error = await openError({ bookkeepingDelayMs: -1 });
    expect(error.code).toBe("invalid_option");
    expect(error.message).toContain("`bookkeepingDelayMs`");
    expect(error.message).toContain("`-1`");
  });
});

describe("JsonFileRegistry: write failures", () => {
  function diskFull(): NodeJS.ErrnoException {
    return Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
  }

  it("rejects flush with registry_write_failed, logs it, and retries on the next flush", async () => {
    let failing = true;
    const { registry, logger } = await open({
      writeFile: (target, data) =>
        failing ? Promise.reject(diskFull()) : writeFileDurable(target, data),
    });
    registry.set(JOHN, makeEntry("john-doe"));

    const failure = await registry.flush().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(DispatchError);
    expect((failure as DispatchError).code).toBe("registry_write_failed");
    expect((failure as DispatchError).message).toContain(path);
    expect((failure as DispatchError).message).toContain("ENOSPC");
    expect(((failure as DispatchError).cause as NodeJS.ErrnoException).code).toBe("ENOSPC");
    const logged = logger.records.find((record) => record.message === "registry write failed");
    expect(logged?.level).toBe("error");
    expect(logged?.fields).toMatchObject({ path, code: "ENOSPC" });
    expect(registry.stats.failedWrites).toBe(1);

    failing = false;
    await registry.flush(); // still dirty: this write carries the change
    expect(await readFile(path, "utf8")).toContain("john-doe");
    await registry.close();
  });

  it("close() that failed to write can be retried", async () => {
    let failing = true;
    const { registry } = await open({
      writeFile: (target, data) =>
        failing ? Promise.reject(diskFull()) : writeFileDurable(target, data),
    });
    registry.set(JOHN, makeEntry("john-doe"));
    const failure = await registry.close().catch((error: unknown) => error);
    expect((failure as DispatchError).code).toBe("registry_write_failed");
    failing = false;
    await registry.close();
    expect(await readFile(path, "utf8")).toContain("john-doe");
    expect(await readFile(`${path}.last-good`, "utf8")).toContain("john-doe");
  });

  it("logs a failed last-good write without failing close()", async () => {
    const { registry, logger } = await open({
      writeFile: (target, data) =>
        target.endsWith(".last-good") ? Promise.reject(diskFull()) : writeFileDurable(target, data),
    });
    registry.set(JOHN, makeEntry("john-doe"));
    await registry.close();
    expect(await readFile(path, "utf8")).toContain("john-doe");
    const logged = logger.records.find(
      (record) => record.message === "registry last-good write failed",
    );
    expect(logged?.fields).toMatchObject({ path: `${path}.last-good`, code: "ENOSPC" });
  });

  it("retries a failed background write by itself", async () => {
    let attempts = 0;
    const written = deferred();
    const { registry } = await open({
      flushDelayMs: 1,
      writeFile: async (target, data) => {
        attempts += 1;
        if (attempts === 1) throw diskFull();
        await writeFileDurable(target, data);
        if (target === path) written.resolve();
      },
    });
    registry.set(JOHN, makeEntry("john-doe"));
    await written.promise;
    await registry.flush(); // lets the retry's bookkeeping finish; writes nothing more
    expect(attempts).toBe(2);
    expect(registry.stats).toMatchObject({ writes: 1, failedWrites: 1 });
    await registry.close();
  });

  it("surfaces a real file-system error (the folder replaced by a file: ENOTDIR)", async () => {
    // chmod does not stop root, so break the path instead.
    const { registry, logger } = await open();
    const state = join(folder, "state");
    await rm(state, { recursive: true });
    await writeFile(state, "not a folder");
    registry.set(JOHN, makeEntry("john-doe"));

    const failure = await registry.flush().catch((error: unknown) => error);
    expect((failure as DispatchError).code).toBe("registry_write_failed");
    expect((failure as DispatchError).message).toContain(path);
    expect(logger.records.find((record) => record.level === "error")?.fields).toMatchObject({
      path,
      code: "ENOTDIR",
    });

    await rm(state);
    await mkdir(state);
    await registry.close();
    expect(JSON.parse(await readFile(path, "utf8"))).toHaveProperty(
      [JOHN, "session_name"],
      "john-doe",
    );
  });
});

describe("JsonFileRegistry: cost", () => {
  it("1,000 updates to a 10,000-entry registry cost a bounded number of writes", async () => {
    const { registry } = await open();
    for (let index = 0; index < 10_000; index += 1) {
      registry.set(asChatId(`+1555${String(index).padStart(7, "0")}`), makeEntry(`chat-${index}`));
    }
    await registry.flush();
    const seedWrites = registry.stats.writes;
    const seedWriteMs = registry.stats.lastWriteMs;

    const writesBefore = registry.stats.writes;
    const started = performance.now();
    for (let turn = 1; turn <= 1000; turn += 1) {
      registry.update(asChatId(`+1555${String(turn * 7).padStart(7, "0")}`), { turns: turn });
      if (turn % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await registry.flush();
    const elapsedMs = performance.now() - started;
    const writes = registry.stats.writes - writesBefore;
    const size = (await stat(path)).size;
    console.info(
      `registry cost: 10,000 entries (${(size / 1e6).toFixed(1)} MB, first write ${seedWriteMs.toFixed(0)} ms, ${seedWrites} write); ` +
        `1,000 updates -> ${writes} write(s), ${elapsedMs.toFixed(0)} ms until durable, ` +
        `${(registry.stats.totalWriteMs / registry.stats.writes).toFixed(0)} ms per write`,
    );
    expect(writes).toBeGreaterThanOrEqual(1);
    expect(writes).toBeLessThanOrEqual(5);
    expect(registry.get(asChatId("+15550007000"))?.turns).toBe(1000);
    await registry.close();
  });
});
