import { describe, expect, it } from "vitest";
import { DEFAULT_TIERS } from "../../../src/utils/ids.js";
import {
  builtInTiers,
  createConfigSchema,
  defaultMaxLiveSessions,
  expandHome,
  SEND_MESSAGE_TOOL,
  type Config,
  type ConfigContext,
} from "../../../src/config/schema.js";

const GIB = 1024 ** 3;
const linux: ConfigContext = { homeDir: "/home/ada", platform: "linux", totalMemoryBytes: 8 * GIB };

function parse(input: unknown, context: ConfigContext = linux): Config {
  return createConfigSchema(context).parse(input);
}

describe("defaults", () => {
  it("gives every key its default for an empty file", () => {
    const config = parse({});
    expect(config).toMatchObject({
      port: 7878,
      transcriptsDir: "/home/ada/transcripts",
      healthCheckIntervalSeconds: 300,
      idleTimeoutSeconds: 7200,
      maxLiveSessions: 15,
      reservedLiveSessionsForContacts: 1,
      spareProcesses: 1,
      unknownSenders: "ignore",
      messagesPerChatPerMinute: 30,
      newUnknownChatsPerMinute: 20,
      maxConsecutiveErrors: 3,
      turnTimeoutSeconds: 600,
      shutdownGraceSeconds: 30,
      logLevel: "info",
      channels: {
        http: {
          enabled: true,
          allowedHosts: [],
          headersTimeoutSeconds: 10,
          requestTimeoutSeconds: 30,
          keepAliveTimeoutSeconds: 5,
          maxConnections: 512,
        },
        imessage: {
          enabled: false,
          dbPath: "/home/ada/Library/Messages/chat.db",
          pollIntervalMs: 500,
          maxBackfillAgeSeconds: 300,
        },
      },
    });
    expect(config.model).toBeUndefined();
    expect(config.defaultRegion).toBeUndefined();
    expect(config.channels.imessage.sendCommand).toBeUndefined();
  });

  it("gives a cluster node's leases 15 seconds unless the file says otherwise", () => {
    expect(parse({}).cluster).toEqual({ leaseSeconds: 15 });
    expect(parse({ cluster: { leaseSeconds: 3 } }).cluster.leaseSeconds).toBe(3);
    expect(parse({ cluster: { leaseSeconds: 30 } }).cluster.leaseSeconds).toBe(30);
  });

  it("enables iMessage by default only on macOS", () => {
    expect(parse({}, { ...linux, platform: "darwin" }).channels.imessage.enabled).toBe(true);
    expect(parse({}, { ...linux, platform: "linux" }).channels.imessage.enabled).toBe(false);
    const forced = parse({ channels: { imessage: { enabled: true } } });
    expect(forced.channels.imessage.enabled).toBe(true);
  });

  it("leaves iMessage off in demo mode, even on macOS, unless the file turns it on", () => {
    const demoOnMac: ConfigContext = { ...linux, platform: "darwin", demo: true };
    expect(parse({}, demoOnMac).channels.imessage.enabled).toBe(false);
    const named = parse({ channels: { imessage: { dbPath: "~/chat.db" } } }, demoOnMac);
    expect(named.channels.imessage.enabled).toBe(false);
    const asked = parse({ channels: { imessage: { enabled: true } } }, demoOnMac);
    expect(asked.channels.imessage.enabled).toBe(true);
  });

  it("keeps the host names allowed for the HTTP API in lower case", () => {
    const config = parse({ channels: { http: { allowedHosts: ["Dispatch.Example.com"] } } });
    expect(config.channels.http.allowedHosts).toEqual(["dispatch.example.com"]);
  });

  it("keeps nested defaults when only some nested keys are given", () => {
    const config = parse({ channels: { imessage: { pollIntervalMs: 250 } } });
    expect(config.channels.http.enabled).toBe(true);
    expect(config.channels.imessage).toMatchObject({
      pollIntervalMs: 250,
      maxBackfillAgeSeconds: 300,
    });
  });

  it.each([
    [0, 2],
    [512 * 1024 ** 2 - 1, 2],
    [2 * GIB, 4],
    [3.9 * GIB, 7],
    [16 * GIB, 32],
    [128 * GIB, 32],
  ])("allows one live session per 512 MiB: %d bytes -> %d", (bytes, expected) => {
    expect(defaultMaxLiveSessions(bytes)).toBe(expected);
    const config = parse({ spareProcesses: 0 }, { ...linux, totalMemoryBytes: bytes });
    expect(config.maxLiveSessions).toBe(expected);
  });

  it("counts spare processes against the memory-based default", () => {
    expect(parse({ spareProcesses: 3 }).maxLiveSessions).toBe(13); // 16 processes in 8 GiB
    expect(
      parse({ spareProcesses: 3 }, { ...linux, totalMemoryBytes: 2 * GIB }).maxLiveSessions,
    ).toBe(2);
    expect(parse({ spareProcesses: 3, maxLiveSessions: 16 }).maxLiveSessions).toBe(16);
  });

  it("lets the file set maxLiveSessions above the memory-based default", () => {
    expect(parse({ maxLiveSessions: 40 }).maxLiveSessions).toBe(40);
  });
});

describe("tiers", () => {
  it("reserves live-session slots for a tier when asked", () => {
    const config = parse({ maxLiveSessions: 4, tiers: { admin: { reservedLiveSessions: 1 } } });
    expect(config.tiers["admin"]?.reservedLiveSessions).toBe(1);
    expect(config.tiers["favorite"]?.reservedLiveSessions).toBeUndefined();
  });

  it("refuses reservations that leave no slot for other chats, saying what to change", () => {
    const result = createConfigSchema(linux).safeParse({
      maxLiveSessions: 3,
      tiers: { admin: { reservedLiveSessions: 2 }, partner: { reservedLiveSessions: 1 } },
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toMatch(
      /add up to 3, which leaves no live session for other chats.*below `maxLiveSessions` \(3\)/,
    );
    expect(() => parse({ tiers: { admin: { reservedLiveSessions: -1 } } })).toThrow();
  });

  it("keeps one live-session slot for contacts by default, when the bound has room for it", () => {
    expect(parse({ maxLiveSessions: 2 }).reservedLiveSessionsForContacts).toBe(1);
    // No room: one slot in all, or every slot but one already reserved for a tier.
    expect(parse({ maxLiveSessions: 1 }).reservedLiveSessionsForContacts).toBe(0);
    const adminOnly = parse({ maxLiveSessions: 2, tiers: { admin: { reservedLiveSessions: 1 } } });
    expect(adminOnly.reservedLiveSessionsForContacts).toBe(0);
    expect(parse({ reservedLiveSessionsForContacts: 0 }).reservedLiveSessionsForContacts).toBe(0);
    expect(parse({ reservedLiveSessionsForContacts: 4 }).reservedLiveSessionsForContacts).toBe(4);
  });

  it("counts the contacts' slots with the tiers' when they leave none for other chats", () => {
    const result = createConfigSchema(linux).safeParse({
      maxLiveSessions: 3,
      reservedLiveSessionsForContacts: 2,
      tiers: { admin: { reservedLiveSessions: 1 } },
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toBe(
      "The tiers' `reservedLiveSessions` and `reservedLiveSessionsForContacts` add up to 3, " +
        "which leaves no live session for other chats: keep the sum below `maxLiveSessions` (3), or raise it",
    );
  });

  it("has every built-in tier, with the documented tools", () => {
    const { tiers } = parse({});
    expect(Object.keys(tiers)).toEqual([...DEFAULT_TIERS]);
    expect(tiers["admin"]).toMatchObject({ respond: true, permissionMode: "dontAsk" });
    expect(tiers["admin"]?.allowedTools).toEqual(
      expect.arrayContaining([
        "Read",
        "Write",
        "Edit",
        "Bash",
        "WebFetch",
        "WebSearch",
        SEND_MESSAGE_TOOL,
      ]),
    );
    for (const name of ["partner", "family", "favorite"]) {
      expect(tiers[name]).toEqual({
        respond: true,
        allowedTools: ["Read", "Glob", "Grep", SEND_MESSAGE_TOOL],
        disallowedTools: [],
        permissionMode: "dontAsk",
        maxTurns: 30,
      });
    }
    expect(tiers["bots"]?.respond).toBe(false);
    expect(tiers["unknown"]).toMatchObject({ respond: false, allowedTools: [SEND_MESSAGE_TOOL] });
  });

  it("bounds every tier's turns but admin's, and strangers' spending too", () => {
    const { tiers } = parse({ tiers: { coworker: {} } });
    expect(tiers["admin"]?.maxTurns).toBeUndefined();
    expect(tiers["admin"]?.maxBudgetUsd).toBeUndefined();
    for (const name of ["partner", "family", "favorite"]) {
      expect(tiers[name]).toMatchObject({ maxTurns: 30 });
      expect(tiers[name]?.maxBudgetUsd).toBeUndefined();
    }
    for (const name of ["bots", "unknown", "coworker"]) {
      expect(tiers[name]).toMatchObject({ maxTurns: 10, maxBudgetUsd: 1 });
    }
  });

  it("takes a tier's own turn and spending limits", () => {
    const { tiers } = parse({ tiers: { admin: { maxTurns: 200, maxBudgetUsd: 5.5 } } });
    expect(tiers["admin"]).toMatchObject({ maxTurns: 200, maxBudgetUsd: 5.5 });
    for (const bad of [
      { maxTurns: 0 },
      { maxTurns: 2.5 },
      { maxTurns: "10" },
      { maxBudgetUsd: 0 },
      { maxBudgetUsd: -1 },
      { maxBudgetUsd: "1" },
    ]) {
      expect(() => parse({ tiers: { family: bad } }), JSON.stringify(bad)).toThrow();
    }
  });

  it("answers the unknown tier only when unknownSenders is respond", () => {
    expect(parse({ unknownSenders: "respond" }).tiers["unknown"]?.respond).toBe(true);
    expect(parse({ unknownSenders: "ignore" }).tiers["unknown"]?.respond).toBe(false);
    // Saying the same thing twice is fine.
    const both = parse({ unknownSenders: "respond", tiers: { unknown: { respond: true } } });
    expect(both.tiers["unknown"]?.respond).toBe(true);
  });

  it("merges a file's tier entry over the built-in one, key by key", () => {
    const { tiers } = parse({
      tiers: {
        family: { model: "claude-haiku-4-5", allowedTools: ["Read"], systemPrompt: "Be brief." },
      },
    });
    expect(tiers["family"]).toEqual({
      respond: true,
      model: "claude-haiku-4-5",
      allowedTools: ["Read"],
      disallowedTools: [],
      permissionMode: "dontAsk",
      systemPrompt: "Be brief.",
      maxTurns: 30,
    });
    // Other tiers are untouched.
    expect(tiers["partner"]?.allowedTools).toEqual(["Read", "Glob", "Grep", SEND_MESSAGE_TOOL]);
  });

  it("lets the file switch a built-in tier on or off", () => {
    const { tiers } = parse({ tiers: { bots: { respond: true }, favorite: { respond: false } } });
    expect(tiers["bots"]?.respond).toBe(true);
    expect(tiers["favorite"]).toMatchObject({ respond: false, permissionMode: "dontAsk" });
  });

  it("adds a new tier that starts answered and able only to send messages", () => {
    const { tiers } = parse({ tiers: { coworker: { allowedTools: ["Read", SEND_MESSAGE_TOOL] } } });
    expect(tiers["coworker"]).toEqual({
      respond: true,
      allowedTools: ["Read", SEND_MESSAGE_TOOL],
      disallowedTools: [],
      permissionMode: "dontAsk",
      maxTurns: 10,
      maxBudgetUsd: 1,
    });
    expect(Object.keys(tiers)).toEqual([...DEFAULT_TIERS, "coworker"]);
  });

  it("starts a tier named like an Object property from the new-tier base", () => {
    const { tiers } = parse({ tiers: { constructor: { respond: false } } });
    expect(tiers["constructor"]).toEqual({
      respond: false,
      allowedTools: [SEND_MESSAGE_TOOL],
      disallowedTools: [],
      permissionMode: "dontAsk",
      maxTurns: 10,
      maxBudgetUsd: 1,
    });
  });

  it("gives each config its own tool arrays", () => {
    const first = builtInTiers("ignore");
    first.family.allowedTools.push("Bash");
    expect(builtInTiers("ignore").family.allowedTools).not.toContain("Bash");
  });
});

describe("values", () => {
  it("expands ~ in transcriptsDir, dbPath and the sendCommand program", () => {
    const config = parse({
      transcriptsDir: "~/chats",
      channels: { imessage: { dbPath: "~/chat.db", sendCommand: ["~/bin/send", "~/literal"] } },
    });
    expect(config.transcriptsDir).toBe("/home/ada/chats");
    expect(config.channels.imessage.dbPath).toBe("/home/ada/chat.db");
    expect(config.channels.imessage.sendCommand).toEqual(["/home/ada/bin/send", "~/literal"]);
    expect(parse({ transcriptsDir: "~" }).transcriptsDir).toBe("/home/ada");
    expect(parse({ transcriptsDir: "/srv/t" }).transcriptsDir).toBe("/srv/t");
  });

  it("upper-cases a known region", () => {
    expect(parse({ defaultRegion: "gb" }).defaultRegion).toBe("GB");
    expect(parse({ defaultRegion: "US" }).defaultRegion).toBe("US");
  });

  it("accepts every permitted permission mode", () => {
    for (const mode of ["default", "acceptEdits", "plan", "dontAsk"]) {
      expect(
        parse({ tiers: { admin: { permissionMode: mode } } }).tiers["admin"]?.permissionMode,
      ).toBe(mode);
    }
  });

  it("accepts zero where zero makes sense", () => {
    const config = parse({
      spareProcesses: 0,
      shutdownGraceSeconds: 0,
      channels: { imessage: { maxBackfillAgeSeconds: 0 } },
    });
    expect(config.spareProcesses).toBe(0);
    expect(config.shutdownGraceSeconds).toBe(0);
    expect(config.channels.imessage.maxBackfillAgeSeconds).toBe(0);
  });
});

describe("expandHome", () => {
  it("expands only a leading ~ or ~/", () => {
    expect(expandHome("~", "/h")).toBe("/h");
    expect(expandHome("~/a/b", "/h")).toBe("/h/a/b");
    expect(expandHome("~other/a", "/h")).toBe("~other/a");
    expect(expandHome("/a/~/b", "/h")).toBe("/a/~/b");
  });
});

describe("channels.http.webhook", () => {
  const problems = (webhook: unknown): string[] => {
    const result = createConfigSchema(linux).safeParse({ channels: { http: { webhook } } });
    return result.success ? [] : result.error.issues.map((issue) => issue.message);
  };

  it("is off by default, and takes a URL and a secret with a 10 s timeout", () => {
    expect(parse({}).channels.http.webhook).toBeUndefined();
    const config = parse({
      channels: { http: { webhook: { url: "https://example.com/hook", secret: "s".repeat(16) } } },
    });
    expect(config.channels.http.webhook).toEqual({
      url: "https://example.com/hook",
      secret: "s".repeat(16),
      timeoutSeconds: 10,
    });
  });

  it("refuses a URL that is not http or https, and a short secret without showing it", () => {
    expect(problems({ url: "ftp://example.com", secret: "s".repeat(16) }).join()).toContain(
      "http:// or https:// URL",
    );
    const short = problems({ url: "http://127.0.0.1:9/x", secret: "hunter2" });
    expect(short.join()).toContain("`channels.http.webhook.secret`");
    expect(short.join()).toContain("at least 16 characters");
    expect(short.join()).toContain("got 7 characters (not shown)");
    expect(short.join()).not.toContain("hunter2");
    expect(problems({ url: "http://127.0.0.1:9/x" }).length).toBeGreaterThan(0);
  });
});
