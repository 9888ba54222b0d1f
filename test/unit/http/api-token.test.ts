import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadOrCreateApiToken } from "../../../src/channels/http/api-token.js";
import { createMemoryLogger } from "../../../src/logging/logger.js";

let home: string;
let tokenPath: string;
beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), "dispatch-token-"));
  tokenPath = join(home, "state", "api-token");
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

const mode = async (path: string) => (await stat(path)).mode & 0o777;

describe("loadOrCreateApiToken", () => {
  it("creates 32 random bytes as base64url, file 0600 in a new 0700 folder", async () => {
    const result = await loadOrCreateApiToken(tokenPath);
    expect(result.source).toBe("created");
    expect(result.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(result.token, "base64url")).toHaveLength(32);
    expect((await readFile(tokenPath, "utf8")).trim()).toBe(result.token);
    expect(await mode(tokenPath)).toBe(0o600);
    expect(await mode(join(home, "state"))).toBe(0o700);
    // No temp file is left beside it.
    expect(await readdir(join(home, "state"))).toEqual(["api-token"]);
  });

  it("reuses the token it created", async () => {
    const first = await loadOrCreateApiToken(tokenPath);
    const second = await loadOrCreateApiToken(tokenPath);
    expect(second).toEqual({ token: first.token, source: "file" });
  });

  it("makes a different token each time it creates one", async () => {
    const first = await loadOrCreateApiToken(tokenPath);
    await rm(tokenPath);
    const second = await loadOrCreateApiToken(tokenPath);
    expect(second.token).not.toBe(first.token);
  });

  it("reads a token someone wrote by hand, without the trailing newline", async () => {
    await mkdir(join(home, "state"));
    await writeFile(tokenPath, "hand-made-token\n", { mode: 0o600 });
    expect(await loadOrCreateApiToken(tokenPath)).toEqual({
      token: "hand-made-token",
      source: "file",
    });
  });

  it("lets DISPATCH_API_TOKEN win, without touching the file", async () => {
    await mkdir(join(home, "state"));
    await writeFile(tokenPath, "from-file", { mode: 0o600 });
    expect(await loadOrCreateApiToken(tokenPath, "from-env")).toEqual({
      token: "from-env",
      source: "environment",
    });
    expect(await readFile(tokenPath, "utf8")).toBe("from-file");
  });

  it("does not create the file when the environment provides the token", async () => {
    await loadOrCreateApiToken(tokenPath, "from-env");
    await expect(stat(tokenPath)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("ignores a blank DISPATCH_API_TOKEN", async () => {
    const result = await loadOrCreateApiToken(tokenPath, "  ");
    expect(result.source).toBe("created");
  });

  it("makes a group- or world-readable token file 0600 again, with a warning", async () => {
    await mkdir(join(home, "state"));
    await writeFile(tokenPath, "leaky");
    await chmod(tokenPath, 0o644);
    const logger = createMemoryLogger();
    const result = await loadOrCreateApiToken(tokenPath, undefined, { logger });
    expect(result.token).toBe("leaky");
    expect(await mode(tokenPath)).toBe(0o600);
    const warning = logger.records.find((record) => record.level === "warn");
    expect(warning?.message).toBe("api-token permissions fix");
    expect(warning?.fields).toMatchObject({ path: tokenPath, mode: "644" });
    // The token itself is never logged.
    expect(JSON.stringify(logger.records)).not.toContain("leaky");
  });

  it("leaves a 0600 file alone and silent", async () => {
    await mkdir(join(home, "state"));
    await writeFile(tokenPath, "quiet", { mode: 0o600 });
    const logger = createMemoryLogger();
    await loadOrCreateApiToken(tokenPath, undefined, { logger });
    expect(logger.records).toEqual([]);
  });

  it("replaces an empty token file with a new token", async () => {
    await mkdir(join(home, "state"));
    await writeFile(tokenPath, "\n", { mode: 0o600 });
    const result = await loadOrCreateApiToken(tokenPath);
    expect(result.source).toBe("created");
    expect((await readFile(tokenPath, "utf8")).trim()).toBe(result.token);
  });

  it("gives two racing starts the same token", async () => {
    const results = await Promise.all(
      Array.from({ length: 5 }, () => loadOrCreateApiToken(tokenPath)),
    );
    const tokens = new Set(results.map((result) => result.token));
    expect(tokens.size).toBe(1);
    expect((await readFile(tokenPath, "utf8")).trim()).toBe([...tokens][0]);
  });

  it("says what to do when the path is a folder", async () => {
    await mkdir(tokenPath, { recursive: true });
    await expect(loadOrCreateApiToken(tokenPath)).rejects.toMatchObject({
      code: "api_token_unreadable",
      message: expect.stringContaining("DISPATCH_API_TOKEN") as unknown,
    });
  });
});
