import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadOrCreateApiToken } from "../../../src/channels/http/api-token.js";
import { createMemoryLogger } from "../../support/memory-logger.js";

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
    await writeFile(tokenPath, "hand-made-token-0123\n", { mode: 0o600 });
    expect(await loadOrCreateApiToken(tokenPath)).toEqual({
      token: "hand-made-token-0123",
      source: "file",
    });
  });

  it("lets DISPATCH_API_TOKEN win, without touching the file", async () => {
    await mkdir(join(home, "state"));
    await writeFile(tokenPath, "from-file-0123456789", { mode: 0o600 });
    expect(await loadOrCreateApiToken(tokenPath, "from-env-0123456789")).toEqual({
      token: "from-env-0123456789",
      source: "environment",
    });
    expect(await readFile(tokenPath, "utf8")).toBe("from-file-0123456789");
  });

  it("does not create the file when the environment provides the token", async () => {
    await loadOrCreateApiToken(tokenPath, "from-env-0123456789");
    await expect(stat(tokenPath)).rejects.toMatchObject({ code: "ENOENT" });
  });

  // Issue 12: DISPATCH_API_TOKEN=a was accepted silently.
  it("refuses a DISPATCH_API_TOKEN shorter than 16 characters, saying how to make a good one", async () => {
    const failure = loadOrCreateApiToken(tokenPath, "a");
    await expect(failure).rejects.toMatchObject({ code: "api_token_weak" });
    const message = ((await failure.catch((error: unknown) => error)) as Error).message;
    expect(message).toContain("DISPATCH_API_TOKEN is 1 character long");
    expect(message).toContain("at least 16");
    expect(message).toContain("openssl rand -hex 32");
    expect(message).toContain("unset DISPATCH_API_TOKEN");
    // Nothing was written in its place.
    await expect(stat(tokenPath)).rejects.toMatchObject({ code: "ENOENT" });
    await expect(loadOrCreateApiToken(tokenPath, "0123456789abcde")).rejects.toMatchObject({
      code: "api_token_weak",
    });
    expect((await loadOrCreateApiToken(tokenPath, "0123456789abcdef")).token).toBe(
      "0123456789abcdef",
    );
  });

  it("refuses a token with whitespace inside, which no Authorization header can carry", async () => {
    await expect(
      loadOrCreateApiToken(tokenPath, "correct horse battery staple"),
    ).rejects.toMatchObject({
      code: "api_token_weak",
      message: expect.stringContaining("DISPATCH_API_TOKEN contains whitespace") as unknown,
    });
  });

  it("refuses a short token in the token file, naming the file and leaving it as it is", async () => {
    await mkdir(join(home, "state"));
    await writeFile(tokenPath, "short\n", { mode: 0o600 });
    await expect(loadOrCreateApiToken(tokenPath)).rejects.toMatchObject({
      code: "api_token_weak",
      message: expect.stringContaining(
        `The API token in ${tokenPath} is 5 characters long`,
      ) as unknown,
    });
    expect(await readFile(tokenPath, "utf8")).toBe("short\n");
  });

  it("ignores a blank DISPATCH_API_TOKEN", async () => {
    const result = await loadOrCreateApiToken(tokenPath, "  ");
    expect(result.source).toBe("created");
  });

  it("makes a group- or world-readable token file 0600 again, with a warning", async () => {
    await mkdir(join(home, "state"));
    await writeFile(tokenPath, "leaky-token-0123456789");
    await chmod(tokenPath, 0o644);
    const logger = createMemoryLogger();
    const result = await loadOrCreateApiToken(tokenPath, undefined, { logger });
    expect(result.token).toBe("leaky-token-0123456789");
    expect(await mode(tokenPath)).toBe(0o600);
    const warning = logger.records.find((record) => record.level === "warn");
    expect(warning?.message).toBe("api-token-permissions-fix");
    expect(warning?.fields).toMatchObject({ path: tokenPath, mode: "644" });
    // The token itself is never logged.
    expect(JSON.stringify(logger.records)).not.toContain("leaky-token");
  });

  it("leaves a 0600 file alone and silent", async () => {
    await mkdir(join(home, "state"));
    await writeFile(tokenPath, "quiet-token-0123456789", { mode: 0o600 });
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
