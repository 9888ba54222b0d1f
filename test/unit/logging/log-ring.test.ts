import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogRing, type LogLine } from "../../../src/logging/log-ring.js";
import { createLogger } from "../../../src/logging/logger.js";

const TOKEN = "tok_9f8e7d6c5b4a39281706";

/** A logger writing JSON lines to nowhere and to the ring, as the daemon's writes to stdout. */
function loggerWithRing(ring = createLogRing(), level = "info") {
  const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
  return { ring, logger: createLogger({ level, destination: sink, copyTo: ring.stream }) };
}

describe("createLogRing, fed by the daemon's logger", () => {
  it("keeps what the logger writes at its level: time, level, message and fields with bindings", () => {
    const { ring, logger } = loggerWithRing();
    logger.child({ channel: "imessage" }).warn("channel-off", { cause: "no access" });
    logger.debug("not kept: below the level");
    logger.info("daemon-start", { port: 7878 });
    const lines = ring.recent();
    expect(lines).toEqual([
      {
        seq: 1,
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as string,
        level: "warn",
        message: "channel-off",
        fields: { channel: "imessage", cause: "no access" },
      },
      expect.objectContaining({ seq: 2, level: "info", message: "daemon-start" }),
    ]);
    expect(ring.recent(1).map((line) => line.seq)).toEqual([2]);
  });

  it("keeps the latest `capacity` lines and tells listeners of each new one", () => {
    const ring = createLogRing({ capacity: 3 });
    const { logger } = loggerWithRing(ring);
    const heard: LogLine[] = [];
    const unsubscribe = ring.subscribe((line) => heard.push(line));
    for (let index = 1; index <= 5; index += 1) logger.info("tick", { index });
    unsubscribe();
    logger.info("after");
    expect(heard.map((line) => line.fields.index)).toEqual([1, 2, 3, 4, 5]);
    expect(ring.recent().map((line) => line.message)).toEqual(["tick", "tick", "after"]);
    expect(ring.recent().map((line) => line.seq)).toEqual([4, 5, 6]);
  });

  it("never shows a secret: named values anywhere, bearer tokens, keys and secret-named fields", () => {
    const { ring, logger } = loggerWithRing();
    logger.info("before the token was known", { note: `token ${TOKEN} in text` });
    ring.addSecrets([TOKEN, "short", undefined]);
    logger.warn(`request with Bearer ${TOKEN}`, {
      header: "Authorization: Bearer abc.def-123",
      nested: { apiKey: "whatever", list: [`x${TOKEN}y`, "sk-ant-api03-AbC_dEf-123"] },
      token: "anything",
      tokens: 1234,
      shortWord: "short",
    });
    const text = JSON.stringify(ring.recent());
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain("abc.def-123");
    expect(text).not.toContain("sk-ant-api03");
    expect(text).not.toContain("whatever");
    const [before, after] = ring.recent();
    expect(before!.fields.note).toBe("token [redacted] in text");
    expect(after!.message).toBe("request with Bearer [redacted]");
    expect(after!.fields).toEqual({
      header: "Authorization: Bearer [redacted]",
      nested: { apiKey: "[redacted]", list: ["x[redacted]y", "[redacted]"] },
      token: "[redacted]",
      // Counts of tokens are no secret, and short "secrets" are not looked for.
      tokens: 1234,
      shortWord: "short",
    });
  });

  it("cuts very long field values, so one line cannot fill the memory", () => {
    const { ring, logger } = loggerWithRing(createLogRing({ maxFieldLength: 10 }), "debug");
    logger.debug("http-reply-text", { text: "x".repeat(50) });
    expect(ring.recent()[0]!.fields.text).toBe(`${"x".repeat(9)}…`);
  });
});
