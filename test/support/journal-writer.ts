/**
 * Child process for test/e2e/journal-crash.test.ts: opens the journal at argv[2], finishes what
 * a killed predecessor left (as the daemon's replay would), then records messages `m-<n>` from
 * the channel's cursor on, forever. Each message goes through four transactions, and after each
 * the writer prints `committed <n> <step>`: `received` (message and cursor `<n>`), `delivered`,
 * `answered` (a reply of two parts) and `sent` (part 0). The test kills it with SIGKILL at
 * random moments and checks the journal against what it printed.
 *
 * Run: node --import tsx test/support/journal-writer.ts <path-to-journal.db>
 */
import { createLogger } from "../../src/logging/logger.js";
import { openStateDatabase } from "../../src/store/sqlite-database.js";
import { createSqliteJournal } from "../../src/store/sqlite-journal.js";

const CHANNEL = "crash-test";
const CHAT = "+15550000000";
const replyParts = (n: number) => [`reply ${n} part 0`, `reply ${n} part 1`];

const path = process.argv[2];
if (path === undefined) {
  process.stderr.write("usage: journal-writer.ts <path-to-journal.db>\n");
  process.exit(2);
}

const db = openStateDatabase({
  path,
  logger: createLogger({ level: "warn", destination: process.stderr }),
});
const journal = createSqliteJournal({ db });
// stdout is a pipe: writes are synchronous on Linux, so a printed line was really printed.
const committed = (n: number, step: string) => process.stdout.write(`committed ${n} ${step}\n`);
const numberOf = (externalId: string | undefined) => Number(externalId?.slice("m-".length));
const reply = (n: number) => ({ channel: CHANNEL, chatId: CHAT, parts: replyParts(n) });

for (const row of await journal.pendingInbound()) {
  const n = numberOf(row.externalId);
  if (row.status === "received") {
    await journal.markDelivered(row.id);
    committed(n, "delivered");
  }
  await journal.markAnswered([row.id], reply(n));
  committed(n, "answered");
}
for (const row of await journal.unsentOutbox()) {
  if (row.part !== 0) continue;
  await journal.markSent(row.inboundId, 0);
  committed(Number(/^reply (\d+) /.exec(row.text)?.[1]), "sent");
}

for (let n = Number((await journal.cursor(CHANNEL)) ?? "0") + 1; ; n += 1) {
  const { id } = await journal.recordInbound(
    {
      channel: CHANNEL,
      chatId: CHAT,
      text: `message ${n}`,
      externalId: `m-${n}`,
      receivedAt: new Date(),
    },
    { cursor: String(n) },
  );
  committed(n, "received");
  await journal.markDelivered(id);
  committed(n, "delivered");
  await journal.markAnswered([id], reply(n));
  committed(n, "answered");
  await journal.markSent(id, 0);
  committed(n, "sent");
}
