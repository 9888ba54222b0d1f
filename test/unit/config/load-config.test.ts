import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DispatchError } from "../../../src/utils/errors.js";
import {
  ConfigInvalidError,
  jsonErrorLocation,
  loadConfig,
  parseConfig,
  readEnvironmentOverrides,
  resolvePaths,
  type LoadConfigOptions,
} from "../../../src/config/load-config.js";

const GIB = 1024 ** 3;

describe("resolvePaths", () => {
  it("puts everything under ~/dispatch by default", () => {
    expect(resolvePaths({}, "/home/ada")).toEqual({
      home: "/home/ada/dispatch",
      configFile: "/home/ada/dispatch/config.json",
      contactsFile: "/home/ada/dispatch/contacts.json",
      stateDir: "/home/ada/dispatch/state",
      registryFile: "/home/ada/dispatch/state/sessions.json",
      journalFile: "/home/ada/dispatch/state/journal.db",
      apiTokenFile: "/home/ada/dispatch/state/api-token",
      lockFile: "/home/ada/dispatch/state/daemon.lock",
      logFile: "/home/ada/dispatch/state/logs/dispatch.log",
    });
  });

  it("moves the whole folder to DISPATCH_HOME", () => {
    const paths = resolvePaths({ DISPATCH_HOME: "/srv/dispatch" }, "/home/ada");
    expect(paths.home).toBe("/srv/dispatch");
    expect(paths.configFile).toBe("/srv/dispatch/config.json");
    expect(paths.registryFile).toBe("/srv/dispatch/state/sessions.json");
    expect(paths.lockFile).toBe("/srv/dispatch/state/daemon.lock");
  });

  it("expands ~ in DISPATCH_HOME and ignores an empty one", () => {
    expect(resolvePaths({ DISPATCH_HOME: "~/bot" }, "/home/ada").home).toBe("/home/ada/bot");
    expect(resolvePaths({ DISPATCH_HOME: "" }, "/home/ada").home).toBe("/home/ada/dispatch");
  });

  it("makes a relative DISPATCH_HOME absolute", () => {
    expect(resolvePaths({ DISPATCH_HOME: "rel" }, "/home/ada").home).toBe(path.resolve("rel"));
  });
});

describe("parseConfig", () => {
  const context = {
    homeDir: "/home/ada",
    platform: "linux" as const,
    totalMemoryBytes: 4 * GIB,
    file: "/home/ada/dispatch/config.json",
  };

  it("parses a valid file", () => {
    const config = parseConfig('{ "port": 9000, "model": "claude-sonnet-4-5" }', context);
    expect(config.port).toBe(9000);
    expect(config.model).toBe("claude-sonnet-4-5");
    expect(config.maxLiveSessions).toBe(7); // 8 processes in 4 GiB, one of them the spare
  });

  it("ignores a byte-order mark", () => {
    expect(parseConfig('\ufeff{ "port": 9000 }', context).port).toBe(9000);
  });

  it("names the file and the line and column of invalid JSON", () => {
    const text = '{\n  "port": 9000,\n}\n';
    const error = catchError(() => parseConfig(text, context));
    expect(error).toBeInstanceOf(DispatchError);
    expect(error.code).toBe("config_invalid");
    expect(error.message).toContain("/home/ada/dispatch/config.json is not valid JSON");
    expect(error.message).toContain("(line 3, column 1)");
    expect(error.message).toContain("trailing commas");
  });

  it("says an empty file ends too soon", () => {
    const error = catchError(() => parseConfig("", context));
    expect(error.code).toBe("config_invalid");
    expect(error.message).toContain("at the end of the file");
  });

  it("lists every schema problem under the file's name", () => {
    const error = catchError(() =>
      parseConfig('{ "idleTimeoutSeconds": -5, "idleTimeout": 1 }', context),
    );
    expect(error).toBeInstanceOf(ConfigInvalidError);
    expect(error.code).toBe("config_invalid");
    expect(error.message).toContain(
      "Invalid configuration in /home/ada/dispatch/config.json (2 problems):",
    );
    expect(error.message).toContain(
      "  - Expected `idleTimeoutSeconds` to be a positive integer, got `-5`",
    );
    expect(error.message).toContain(
      "  - Unknown key `idleTimeout` in config.json; did you mean `idleTimeoutSeconds`?",
    );
    expect((error as ConfigInvalidError).problems).toHaveLength(2);
  });
});

describe("jsonErrorLocation", () => {
  it("turns a position into a line and column", () => {
    expect(jsonErrorLocation("ab\ncd", "Unexpected token d in JSON at position 4")).toBe(
      " (line 2, column 2)",
    );
  });

  it("finds the position itself when V8 names none (an unexpected token)", () => {
    const text = '{\n  "port": tru\n}';
    expect(jsonErrorLocation(text, `Unexpected token '}', "${text}" is not valid JSON`)).toBe(
      " (line 2, column 11)",
    );
  });

  it("adds nothing when the message already has a line", () => {
    expect(jsonErrorLocation("x", "Unexpected token at position 0 (line 1 column 1)")).toBe("");
  });
});

describe("readEnvironmentOverrides", () => {
  it("reads DISPATCH_PORT and DISPATCH_LOG_LEVEL", () => {
    expect(
      readEnvironmentOverrides({ DISPATCH_PORT: "9001", DISPATCH_LOG_LEVEL: "DEBUG" }),
    ).toEqual({
      overrides: { port: 9001, logLevel: "debug" },
      problems: [],
    });
  });

  it("treats empty variables as unset", () => {
    expect(readEnvironmentOverrides({ DISPATCH_PORT: "", DISPATCH_LOG_LEVEL: " " })).toEqual({
      overrides: {},
      problems: [],
    });
  });

  it.each(["abc", "0", "65536", "80.5", "0x50", "-1"])(
    "rejects DISPATCH_PORT=%s, naming the variable",
    (value) => {
      expect(readEnvironmentOverrides({ DISPATCH_PORT: value }).problems).toEqual([
        `Expected \`DISPATCH_PORT\` to be an integer from 1 to 65535, got \`${value}\``,
      ]);
    },
  );

  it("rejects an unknown DISPATCH_LOG_LEVEL, naming the variable and the choices", () => {
    expect(readEnvironmentOverrides({ DISPATCH_LOG_LEVEL: "loud" }).problems).toEqual([
      "Expected `DISPATCH_LOG_LEVEL` to be one of trace, debug, info, warn, error, fatal, silent, got `loud`",
    ]);
  });
});

describe("loadConfig", () => {
  let homeDir: string;
  let options: LoadConfigOptions;

  beforeEach(async () => {
    homeDir = await mkdtemp(path.join(os.tmpdir(), "dispatch-config-"));
    options = { env: {}, homeDir, platform: "linux", totalMemoryBytes: 2 * GIB };
  });

  afterEach(async () => {
    await rm(homeDir, { recursive: true, force: true });
  });

  async function writeConfig(
    contents: string,
    home = path.join(homeDir, "dispatch"),
  ): Promise<void> {
    await mkdir(home, { recursive: true });
    await writeFile(path.join(home, "config.json"), contents);
  }

  it("uses every default when there is no config.json", async () => {
    const { config, paths, fromFile } = await loadConfig(options);
    expect(fromFile).toBe(false);
    expect(paths.configFile).toBe(path.join(homeDir, "dispatch", "config.json"));
    expect(config.port).toBe(7878);
    expect(config.maxLiveSessions).toBe(3);
    expect(config.transcriptsDir).toBe(path.join(homeDir, "transcripts"));
  });

  it("reads config.json, expanding ~ against the given home", async () => {
    await writeConfig(JSON.stringify({ transcriptsDir: "~/chats", idleTimeoutSeconds: 60 }));
    const { config, fromFile } = await loadConfig(options);
    expect(fromFile).toBe(true);
    expect(config.transcriptsDir).toBe(path.join(homeDir, "chats"));
    expect(config.idleTimeoutSeconds).toBe(60);
  });

  it("reads config.json from DISPATCH_HOME", async () => {
    const elsewhere = path.join(homeDir, "elsewhere");
    await writeConfig(JSON.stringify({ port: 9100 }), elsewhere);
    await writeConfig(JSON.stringify({ port: 9200 }));
    const { config, paths } = await loadConfig({ ...options, env: { DISPATCH_HOME: elsewhere } });
    expect(config.port).toBe(9100);
    expect(paths.home).toBe(elsewhere);
    expect(paths.stateDir).toBe(path.join(elsewhere, "state"));
  });

  it("lets the environment override the file", async () => {
    await writeConfig(JSON.stringify({ port: 9100, logLevel: "warn" }));
    const { config } = await loadConfig({
      ...options,
      env: { DISPATCH_PORT: "9300", DISPATCH_LOG_LEVEL: "debug" },
    });
    expect(config.port).toBe(9300);
    expect(config.logLevel).toBe("debug");
  });

  it("rejects a bad DISPATCH_PORT even without a file", async () => {
    const error = await catchAsync(loadConfig({ ...options, env: { DISPATCH_PORT: "http" } }));
    expect(error.code).toBe("config_invalid");
    expect(error.message).toContain("Invalid configuration in the environment (1 problem):");
    expect(error.message).toContain("`DISPATCH_PORT`");
  });

  it("lists the file's problems and the environment's together", async () => {
    await writeConfig(JSON.stringify({ port: 0 }));
    const error = await catchAsync(loadConfig({ ...options, env: { DISPATCH_PORT: "http" } }));
    expect(error.message).toContain("and the environment (2 problems):");
    expect(error.message).toContain("Expected `port` to be an integer from 1 to 65535, got `0`");
    expect(error.message).toContain(
      "Expected `DISPATCH_PORT` to be an integer from 1 to 65535, got `http`",
    );
  });

  it("names the file when its JSON is invalid", async () => {
    await writeConfig('{ "port": 9100 ');
    const error = await catchAsync(loadConfig(options));
    expect(error.code).toBe("config_invalid");
    expect(error.message).toContain(path.join(homeDir, "dispatch", "config.json"));
  });

  // Issue 12: `--demo` answers everyone, and left iMessage on (the default on macOS), so a demo
  // would have answered every real iMessage sender.
  it("leaves iMessage off in demo mode on macOS unless config.json turns it on by name", async () => {
    const onMac: LoadConfigOptions = { ...options, platform: "darwin" };
    expect((await loadConfig(onMac)).config.channels.imessage.enabled).toBe(true);
    expect((await loadConfig({ ...onMac, demo: true })).config.channels.imessage.enabled).toBe(
      false,
    );
    await writeConfig(JSON.stringify({ channels: { imessage: { enabled: true } } }));
    expect((await loadConfig({ ...onMac, demo: true })).config.channels.imessage.enabled).toBe(
      true,
    );
  });

  it("reports a config.json it cannot read as config_unreadable", async () => {
    await mkdir(path.join(homeDir, "dispatch", "config.json"), { recursive: true });
    const error = await catchAsync(loadConfig(options));
    expect(error.code).toBe("config_unreadable");
    expect(error.message).toContain("config.json");
  });
});

function catchError(action: () => unknown): DispatchError {
  try {
    action();
  } catch (error) {
    if (error instanceof DispatchError) return error;
    throw error;
  }
  throw new Error("expected an error");
}

async function catchAsync(promise: Promise<unknown>): Promise<DispatchError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DispatchError) return error;
    throw error;
  }
  throw new Error("expected an error");
}
