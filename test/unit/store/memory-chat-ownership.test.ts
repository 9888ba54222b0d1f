/**
 * Chat ownership in memory, the embedded adapter of a single node: the contract every adapter
 * passes (`chat-ownership-contract.ts`), two "nodes" sharing one set of rows.
 */
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
