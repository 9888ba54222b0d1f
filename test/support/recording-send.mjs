// Stands in for osascript in tests: `node recording-send.mjs <record-file> buddy|chat <recipient>
// <text>` appends the three arguments after the record file as one JSON line to it, so a test
// can check that what dispatch meant to send arrived byte for byte.
import { appendFileSync } from "node:fs";
import process from "node:process";

const [recordFile, ...rest] = process.argv.slice(2);
if (!recordFile || rest.length !== 3 || !["buddy", "chat"].includes(rest[0])) {
  process.stderr.write(
    `usage: recording-send.mjs <record-file> buddy|chat <recipient> <text>; got ${JSON.stringify(rest)}\n`,
  );
  process.exit(2);
}
appendFileSync(recordFile, `${JSON.stringify(rest)}\n`);
