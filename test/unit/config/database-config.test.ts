/**
 * `database.url` / `DISPATCH_DATABASE_URL` and `database.nodeId` / `DISPATCH_NODE_ID`: validated
 * at start, naming the key, and a URL's password never in a message.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { defaultNodeId, databasePassword } from "../../../src/config/database.js";
import {
  ConfigInvalidError,
  loadConfig,
  type LoadConfigOptions,
} from "../../../src/config/load-config.js";

const SECRET = "s3cr3t-Pa55";
const GOOD_URL = `postgres://dispatch:${SECRET}@db.example.com:5432/dispatch`;

let homeDir: string;
let options: LoadConfigOptions;

beforeEach(async () => {
  homeDir = await mkdtemp(path.join(os.tmpdir(), "dispatch-database-config-"));
  options = {
    env: {},
    homeDir,
    platform: "linux",
    totalMemoryBytes: 8 * 1024 ** 3,
    hostName: "Box.Example",
  };
});

afterEach(async () => {
  await rm(homeDir, { recursive: true, force: true });
});

async function writeConfig(value: unknown): Promise<void> {
  await mkdir(path.join(homeDir, "dispatch"), { recursive: true });
  await writeFile(path.join(homeDir, "dispatch", "config.json"), JSON.stringify(value));
}

async function problemsOf(promise: Promise<unknown>): Promise<readonly string[]> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ConfigInvalidError) {
      expect(error.message).not.toContain(SECRET);
      return error.problems;
    }
    throw error;
  }
  throw new Error("expected config_invalid");
}

describe("database settings", () => {
  it("leave the daemon embedded when no URL is given, named after host and port", async () => {
    const { config } = await loadConfig(options);
    expect(config.database).toEqual({ url: undefined, nodeId: "box.example-7878" });
  });

  it("take the URL and node id from config.json", async () => {
    await writeConfig({ port: 8000, database: { url: GOOD_URL, nodeId: "node-a" } });
    const { config } = await loadConfig(options);
    expect(config.database).toEqual({ url: GOOD_URL, nodeId: "node-a" });
  });

  it("let the environment override config.json", async () => {
    await writeConfig({ database: { url: "postgresql://x@other/db", nodeId: "node-a" } });
    const { config } = await loadConfig({
      ...options,
      env: { DISPATCH_DATABASE_URL: GOOD_URL, DISPATCH_NODE_ID: "node-b" },
    });
    expect(config.database).toEqual({ url: GOOD_URL, nodeId: "node-b" });
  });

  it("name the node after DISPATCH_PORT when it moves the port", async () => {
    const { config } = await loadConfig({ ...options, env: { DISPATCH_PORT: "9001" } });
    expect(config.database.nodeId).toBe("box.example-9001");
  });

  it("refuse a URL that is not PostgreSQL's, without showing it", async () => {
    await writeConfig({ database: { url: `mysql://root:${SECRET}@db/dispatch` } });
    expect(await problemsOf(loadConfig(options))).toEqual([
      "Expected `database.url` to be a PostgreSQL URL such as " +
        "postgres://dispatch:password@db.example.com:5432/dispatch, but its scheme is `mysql:` " +
        "(the value is not shown: it may hold a password)",
    ]);
  });

  it("refuse a bad DISPATCH_DATABASE_URL, without showing it", async () => {
    const problems = await problemsOf(
      loadConfig({ ...options, env: { DISPATCH_DATABASE_URL: `${SECRET} not a url` } }),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^Expected `DISPATCH_DATABASE_URL` to be a PostgreSQL URL/);
    expect(problems[0]).toContain("it is not a URL");
  });

  it("refuse node ids outside the charset or too long, naming key and value", async () => {
    await writeConfig({ database: { nodeId: "node a/b" } });
    expect(await problemsOf(loadConfig(options))).toEqual([
      'Expected `database.nodeId` to be 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or a digit, got `"node a/b"`',
    ]);
    await writeConfig({});
    const long = "n".repeat(65);
    expect(await problemsOf(loadConfig({ ...options, env: { DISPATCH_NODE_ID: long } }))).toEqual([
      `Expected \`DISPATCH_NODE_ID\` to be 1 to 64 letters, digits, \`.\`, \`_\` or \`-\`, starting with a letter or a digit, got \`${long}\``,
    ]);
  });

  it("refuse an unknown key under database", async () => {
    await writeConfig({ database: { uri: GOOD_URL } });
    const problems = await problemsOf(loadConfig(options));
    expect(problems[0]).toMatch(
      /^Unknown key `database.uri` in config.json; did you mean `database.url`\?/,
    );
  });
});

describe("defaultNodeId", () => {
  it("keeps to the node id's charset and length whatever the host name", () => {
    expect(defaultNodeId("my host_1", 7878)).toBe("my-host_1-7878");
    expect(defaultNodeId("--", 7878)).toBe("node-7878");
    const long = defaultNodeId("h".repeat(200), 65535);
    expect(long).toHaveLength(64);
    expect(long.endsWith("-65535")).toBe(true);
  });
});

describe("databasePassword", () => {
  it("finds the password to hide, decoded", () => {
    expect(databasePassword("postgres://u:p%40ss@h/db")).toBe("p@ss");
    expect(databasePassword("postgres://u@h/db")).toBeUndefined();
    expect(databasePassword(undefined)).toBeUndefined();
  });
});
