/**
 * Chat ownership in memory, the embedded adapter of a single node: the contract every adapter
 * passes (`chat-ownership-contract.ts`), two "nodes" sharing one set of rows, and its stand-in for
 * a row lock.
 */
import { describe, expect, it } from "vitest";
import { asSessionName } from "../../../src/utils/ids.js";
import { ManualClock } from "../../support/manual-clock.js";
import {
  createMemoryChatOwnership,
  createMemoryOwnershipRows,
  type MemoryOwnershipRows,
} from "../../../src/store/memory-chat-ownership.js";
import { describeChatOwnershipContract } from "./chat-ownership-contract.js";

let rows: MemoryOwnershipRows;

describeChatOwnershipContract("memory", {
  create(clock) {
    rows = createMemoryOwnershipRows();
    return Promise.resolve(createMemoryChatOwnership({ rows, clock }));
  },
  another(clock) {
    return Promise.resolve(createMemoryChatOwnership({ rows, clock }));
  },
  cleanup: () => Promise.resolve(),
});

describe("createMemoryChatOwnership", () => {
  it("makes a take-over wait for a fenced write under way, as a row lock does", async () => {
    const clock = new ManualClock();
    const shared = createMemoryOwnershipRows();
    const a = createMemoryChatOwnership({ rows: shared, clock });
    const b = createMemoryChatOwnership({ rows: shared, clock });
    const first = await a.acquire(asSessionName("alice"), "a", 15_000);
    if (!first.acquired) throw new Error("expected node a to acquire");
    clock.advance(15_000);
    const events: string[] = [];
    let finishWrite!: () => void;
    const write = a.fencedWrite(first.lease, async () => {
      await new Promise<void>((resolve) => (finishWrite = resolve));
      events.push("write committed");
    });
    const takeOver = b.acquire(asSessionName("alice"), "b", 15_000).then((result) => {
      events.push("taken over");
      return result;
    });
    // Every in-memory step is done within a turn of the event loop: give it several.
    for (let turn = 0; turn < 5; turn += 1) await new Promise((resolve) => setImmediate(resolve));
    expect(events).toEqual([]);
    finishWrite();
    await write;
    expect(await takeOver).toMatchObject({ acquired: true, lease: { owner: "b", epoch: 2 } });
    expect(events).toEqual(["write committed", "taken over"]);
  });
});
