/**
 * How a write to the state database reaches the disk. The connection commits with
 * `synchronous=NORMAL` (set in `sqlite-database.ts`); the two ways here make writes survive a
 * power cut when a promise to someone outside rests on them: at once, inside the write
 * (`durableWrites`), or later and off the event loop, before an acknowledgment
 * (`createWalSync`). `docs/journal.md` says which writes take which.
 */
import { open, type FileHandle } from "node:fs/promises";
import type { Database } from "./sqlite-database.js";

/**
 * Runs a write so that it is on disk when it returns. The connection commits with
 * `synchronous=NORMAL`: in WAL mode such a commit survives a crash of dispatch (a `kill -9`, an
 * exception) but may be undone by a power cut or a kernel crash, and costs no fsync. A write
 * that a promise to someone outside rests on at once (a reply about to go out, the id a replayed
 * message is handed over under) runs here instead, with `synchronous=FULL`: its commit fsyncs the
 * WAL, and with it every commit before it, so the order of writes survives a power cut too. The
 * bookkeeping writes between them (delivered, sent, turn costs, the transcript mirror) cost
 * ~0.05 ms instead of an fsync each; a warm turn went from five or six fsyncs to one
 * (`docs/journal.md`).
 */
export function durableWrites(db: Database): <T>(write: () => T) => T {
  return (write) => {
    // SQLite refuses to change the level inside a transaction: a caller's enclosing transaction
    // decides for its own commit.
    if (db.inTransaction) return write();
    // Not a statement prepared once: SQLite applies this pragma when it compiles it.
    db.pragma("synchronous = FULL");
    try {
      return write();
    } finally {
      db.pragma("synchronous = NORMAL");
    }
  };
}

/**
 * fdatasync of the WAL file on the thread pool, grouped: a call made while one runs waits for the
 * next, which starts when that one ends (the running one may have begun before the caller's
 * write). Commits in WAL mode are appended to the WAL, so syncing it makes them all durable, as a
 * `synchronous=FULL` commit would, without holding up the event loop. Without a WAL (a file
 * system that refused WAL mode) commits go to the database file, which is synced instead.
 */
export function createWalSync(db: Database): { sync(): Promise<void>; close(): void } {
  let file: Promise<FileHandle> | undefined;
  let running: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  let closed = false;
  const openFile = async (): Promise<FileHandle> => {
    try {
      return await open(`${db.name}-wal`, "r");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      return open(db.name, "r");
    }
  };
  const datasync = async (): Promise<void> => {
    if (file === undefined) {
      file = openFile();
      file.catch(() => (file = undefined)); // tried again on the next call
    }
    await (await file).datasync();
  };
  const start = (): Promise<void> => {
    const round = datasync();
    running = round;
    const clear = () => {
      if (running === round) running = undefined;
    };
    round.then(clear, clear);
    return round;
  };
  return {
    sync() {
      // Closing the database wrote everything out; an in-memory one has no disk to reach.
      if (closed || db.memory) return Promise.resolve();
      if (!running) return start();
      next ??= running
        .catch(() => undefined)
        .then(() => {
          next = undefined;
          return start();
        });
      return next;
    },
    close() {
      closed = true;
      void file?.then((handle) => handle.close()).catch(() => undefined);
      file = undefined;
    },
  };
}
