import { describe, expect, it } from "vitest";
import { validateConfig } from "../../../src/config/load-config.js";
import { editDistance, suggest } from "../../../src/config/problems.js";
import { formatKeyPath } from "../../../src/utils/zod-issues.js";
import type { ConfigContext } from "../../../src/config/schema.js";

const context: ConfigContext = {
  homeDir: "/home/ada",
  platform: "linux",
  totalMemoryBytes: 2 ** 33,
};

function problemsOf(input: unknown): string[] {
  const result = validateConfig(input, context);
  if (result.ok) throw new Error("expected the config to be rejected");
  return result.problems;
}

describe("problem messages", () => {
  it.each<[string, unknown, string]>([
    ["idleTimeoutSeconds", -5, "Expected `idleTimeoutSeconds` to be a positive integer, got `-5`"],
    [
      "idleTimeoutSeconds",
      1.5,
      "Expected `idleTimeoutSeconds` to be a positive integer, got `1.5`",
    ],
    [
      "healthCheckIntervalSeconds",
      0,
      "Expected `healthCheckIntervalSeconds` to be a positive integer, got `0`",
    ],
    ["maxLiveSessions", null, "Expected `maxLiveSessions` to be a positive integer, got `null`"],
    ["spareProcesses", -1, "Expected `spareProcesses` to be a whole number (0 or more), got `-1`"],
    [
      "reservedLiveSessionsForContacts",
      -1,
      "Expected `reservedLiveSessionsForContacts` to be a whole number (0 or more), got `-1`",
    ],
    [
      "messagesPerChatPerMinute",
      0,
      "Expected `messagesPerChatPerMinute` to be a positive integer, got `0`",
    ],
    [
      "newUnknownChatsPerMinute",
      "20",
      'Expected `newUnknownChatsPerMinute` to be a positive integer, got `"20"`; write the number without quotes: 20',
    ],
    ["port", 0, "Expected `port` to be an integer from 1 to 65535, got `0`"],
    ["port", 70000, "Expected `port` to be an integer from 1 to 65535, got `70000`"],
    ["model", "", 'Expected `model` to be a model name, got `""`'],
    [
      "unknownSenders",
      "maybe",
      'Expected `unknownSenders` to be "ignore" or "respond", got `"maybe"`',
    ],
    [
      "sessionScope",
      "contact",
      'Expected `sessionScope` to be "person" or "chat", got `"contact"`',
    ],
    [
      "defaultRegion",
      "XX",
      'Expected `defaultRegion` to be a two-letter region code such as "US" or "GB", got `"XX"`',
    ],
    [
      "transcriptsDir",
      "transcripts",
      'Expected `transcriptsDir` to be an absolute path or one starting with `~/`, got `"transcripts"`',
    ],
    ["tiers", [], "Expected `tiers` to be an object of tier name to tier settings, got `[]`"],
    ["channels", true, "Expected `channels` to be an object, got `true`"],
  ])("names the key, the expectation and the value: %s = %j", (key, value, message) => {
    expect(problemsOf({ [key]: value })).toEqual([message]);
  });

  it.each<[unknown, string]>([
    [31, "Expected `cluster.leaseSeconds` to be an integer from 3 to 30, got `31`"],
    [2, "Expected `cluster.leaseSeconds` to be an integer from 3 to 30, got `2`"],
    [7.5, "Expected `cluster.leaseSeconds` to be an integer from 3 to 30, got `7.5`"],
  ])("keeps a cluster lease between 3 and 30 seconds: %j", (leaseSeconds, message) => {
    expect(problemsOf({ cluster: { leaseSeconds } })).toEqual([message]);
  });

  it.each<[unknown, string]>([
    [
      { allowedHosts: ["https://dispatch.example.com"] },
      'Expected `channels.http.allowedHosts[0]` to be a host name without scheme or port, such as "dispatch.example.com", got `"https://dispatch.example.com"`',
    ],
    [
      { allowedHosts: ["dispatch.example.com:443"] },
      'Expected `channels.http.allowedHosts[0]` to be a host name without scheme or port, such as "dispatch.example.com", got `"dispatch.example.com:443"`',
    ],
    [
      { allowedHosts: "dispatch.example.com" },
      'Expected `channels.http.allowedHosts` to be an array of host names, got `"dispatch.example.com"`; write it as an array: ["dispatch.example.com"]',
    ],
    [
      { headersTimeoutSeconds: 0 },
      "Expected `channels.http.headersTimeoutSeconds` to be a positive integer, got `0`",
    ],
    [
      { maxConnections: "100" },
      'Expected `channels.http.maxConnections` to be a positive integer, got `"100"`; write the number without quotes: 100',
    ],
    [
      { headersTimeoutSeconds: 60 },
      "Expected `channels.http.headersTimeoutSeconds` (60) to be at most `channels.http.requestTimeoutSeconds` (30): a request's head is part of the request. Lower the first or raise the second",
    ],
  ])("checks the HTTP server's settings: %j", (http, message) => {
    expect(problemsOf({ channels: { http } })).toEqual([message]);
  });

  it("names a tier's turn and spending limits, what they must be and what was found", () => {
    expect(problemsOf({ tiers: { family: { maxTurns: 0, maxBudgetUsd: -2 } } })).toEqual([
      "Expected `tiers.family.maxTurns` to be a positive integer, got `0`",
      "Expected `tiers.family.maxBudgetUsd` to be a positive number of US dollars, got `-2`",
    ]);
  });

  it("names nested keys with dots and array indexes", () => {
    expect(
      problemsOf({
        tiers: { admin: { allowedTools: ["Read", 3] } },
        channels: { imessage: { sendCommand: ["osascript", ""] } },
      }),
    ).toEqual([
      "Expected `tiers.admin.allowedTools[1]` to be a tool name, got `3`",
      'Expected `channels.imessage.sendCommand[1]` to be a non-empty string, got `""`',
    ]);
  });

  it("rejects a config that is not an object", () => {
    expect(problemsOf([])).toEqual(["Expected config.json to contain a JSON object, got `[]`"]);
    expect(problemsOf(null)).toEqual(["Expected config.json to contain a JSON object, got `null`"]);
  });

  it("lists every problem, not just the first", () => {
    const problems = problemsOf({
      port: "x",
      idleTimeoutSeconds: -5,
      idleTimeout: 5,
      tiers: { family: { permissionMode: "plan!" } },
    });
    expect(problems).toHaveLength(4);
  });

  it("shortens long values", () => {
    const [problem] = problemsOf({ model: { a: "x".repeat(200) } });
    expect(problem).toMatch(/^Expected `model` to be a model name, got `\{"a":"x+…`$/);
    expect(problem?.length).toBeLessThan(140);
  });
});

describe("unknown keys", () => {
  it.each([
    ["idleTimeout", "idleTimeoutSeconds"],
    ["idle_timeout_seconds", "idleTimeoutSeconds"],
    ["Port", "port"],
    ["modle", "model"],
    ["logLevl", "logLevel"],
    ["maxLiveSession", "maxLiveSessions"],
  ])("suggests the closest key for `%s`", (typo, key) => {
    expect(problemsOf({ [typo]: 1 })).toEqual([
      `Unknown key \`${typo}\` in config.json; did you mean \`${key}\`?`,
    ]);
  });

  it("suggests every equally close key", () => {
    expect(problemsOf({ timeout: 5 })).toEqual([
      "Unknown key `timeout` in config.json; did you mean `idleTimeoutSeconds` or `turnTimeoutSeconds`?",
    ]);
  });

  it("names the full path of a nested unknown key and its suggestion", () => {
    expect(problemsOf({ channels: { imessage: { pollInterval: 100 }, htp: {} } })).toEqual([
      "Unknown key `channels.imessage.pollInterval` in config.json; did you mean `channels.imessage.pollIntervalMs`?",
      "Unknown key `channels.htp` in config.json; did you mean `channels.http`?",
    ]);
  });

  it("lists the allowed keys when nothing is close", () => {
    expect(problemsOf({ tiers: { admin: { shell: true } } })).toEqual([
      "Unknown key `tiers.admin.shell` in config.json; the keys allowed here are `respond`, `model`, " +
        "`allowedTools`, `disallowedTools`, `permissionMode`, `systemPrompt`, `reservedLiveSessions`, " +
        "`maxTurns`, `maxBudgetUsd`",
    ]);
  });

  it("rejects a tier name that is not a plain word", () => {
    expect(problemsOf({ tiers: { "close friends": {} } })).toEqual([
      'Expected the key "close friends" in `tiers` to be a tier name of letters, digits, `-` and `_`',
    ]);
  });
});

describe("fixes", () => {
  it("refuses bypassPermissions, says why and suggests dontAsk with allowedTools", () => {
    const [problem] = problemsOf({ tiers: { admin: { permissionMode: "bypassPermissions" } } });
    expect(problem).toContain(
      'Expected `tiers.admin.permissionMode` to be "default", "acceptEdits", "plan" or "dontAsk", ' +
        'got `"bypassPermissions"`',
    );
    expect(problem).toContain('"bypassPermissions" is not allowed');
    expect(problem).toContain("root");
    expect(problem).toContain('Use "dontAsk" with an `allowedTools` list');
  });

  it("suggests the right spelling of a choice", () => {
    expect(problemsOf({ logLevel: "Debug" })).toEqual([
      'Expected `logLevel` to be "trace", "debug", "info", "warn", "error", "fatal" or "silent", ' +
        'got `"Debug"`; did you mean `"debug"`?',
    ]);
    expect(problemsOf({ tiers: { family: { permissionMode: "dont-ask" } } })[0]).toMatch(
      /did you mean `"dontAsk"`\?$/,
    );
  });

  it("says to drop the quotes from a quoted number", () => {
    expect(problemsOf({ port: "8080" })).toEqual([
      'Expected `port` to be an integer from 1 to 65535, got `"8080"`; write the number without quotes: 8080',
    ]);
  });

  it("says to write a lone string as an array", () => {
    expect(problemsOf({ tiers: { admin: { allowedTools: "Bash" } } })).toEqual([
      'Expected `tiers.admin.allowedTools` to be an array of tool names, got `"Bash"`; write it as an array: ["Bash"]',
    ]);
  });

  it("reports tiers.unknown.respond contradicting unknownSenders, alongside other problems", () => {
    const problems = problemsOf({ port: -1, tiers: { unknown: { respond: true } } });
    expect(problems).toContain(
      "`tiers.unknown.respond` disagrees with `unknownSenders`; set only `unknownSenders` " +
        '("respond" or "ignore") to decide whether unknown senders are answered',
    );
    expect(problems).toHaveLength(2);
    expect(
      problemsOf({ unknownSenders: "respond", tiers: { unknown: { respond: false } } }),
    ).toHaveLength(1);
  });
});

describe("suggest", () => {
  it("finds near misses, ignoring case, dashes and underscores", () => {
    expect(suggest("POLL_INTERVAL_MS", ["pollIntervalMs", "dbPath"])).toEqual(["pollIntervalMs"]);
    expect(suggest("prot", ["port", "model"])).toEqual(["port"]);
    expect(suggest("colour", ["port", "model"])).toEqual([]);
    expect(suggest("", ["port"])).toEqual([]);
  });

  it("counts a swap of neighbours as one edit", () => {
    expect(editDistance("modle", "model")).toBe(1);
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("", "abc")).toBe(3);
  });

  it("formats key paths", () => {
    expect(formatKeyPath(["channels", "imessage", "sendCommand", 0])).toBe(
      "channels.imessage.sendCommand[0]",
    );
    expect(formatKeyPath([])).toBe("");
  });
});
