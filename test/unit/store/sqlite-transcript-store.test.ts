/**
 * The transcript mirror in the SQLite state database: the contract every adapter passes
 * (`transcript-store-contract.ts`), and how this one reads.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { openStateDatabase, type Database } from "../../../src/store/sqlite-database.js";
import { createSqliteTranscriptStore } from "../../../src/store/sqlite-transcript-store.js";
import { describeTranscriptStoreContract } from "./transcript-store-contract.js";

const opened: Database[] = [];
let folder: string | undefined;

function open(path: string): Database {
  const db = openStateDatabase({ path, logger: createMemoryLogger() });
  opened.push(db);
  return db;
}

async function closeAll(): Promise<void> {
  for (const db of opened.splice(0)) if (db.open) db.close();
  if (folder) await rm(folder, { recursive: true, force: true });
  folder = undefined;
}

describeTranscriptStoreContract("sqlite", {
  async create(clock) {
    folder = await mkdtemp(join(tmpdir(), "dispatch-transcripts-"));
    return createSqliteTranscriptStore({ db: open(join(folder, "journal.db")), clock });
  },
  another(clock) {
    return Promise.resolve(
      createSqliteTranscriptStore({ db: open(join(folder!, "journal.db")), clock }),
    );
  },
  cleanup: closeAll,
});

describe("createSqliteTranscriptStore", () => {
  let db: Database;
  beforeEach(async () => {
    folder = await mkdtemp(join(tmpdir(), "dispatch-transcripts-"));
    db = open(join(folder, "journal.db"));
  });
  afterEach(closeAll);

  it("reads through indexes, never a scan of every transcript (recentEntries did)", () => {
    // The statements the store prepares, as it prepares them.
    const prepared: string[] = [];
    const watched = new Proxy(db, {
      get(target, key) {
        if (key === "prepare") {
          return (sql: string) => {
            prepared.push(sql);
            return target.prepare(sql);
          };
        }
        const value: unknown = Reflect.get(target, key);
        return typeof value === "function" ? (value as () => unknown).bind(target) : value;
      },
    });
    createSqliteTranscriptStore({ db: watched });
    const reads = prepared.filter((sql) => /^\s*SELECT[\s\S]*FROM transcript_/.test(sql));
    expect(reads.length).toBeGreaterThanOrEqual(6);
    for (const sql of reads) {
      const parameters = (sql.match(/\?/g) ?? []).map(() => "x");
      const plan = (
        db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...parameters) as { detail: string }[]
      )
        .map((step) => step.detail)
        .join("\n");
      expect(plan).toMatch(/USING (COVERING )?INDEX|USING (INTEGER )?PRIMARY KEY/);
      // SEARCH looks rows up by key; SCAN reads them all, through an index or not.
      expect(plan).not.toMatch(/^SCAN transcript_/m);
    }
  });
});
