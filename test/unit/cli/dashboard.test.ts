import { describe, expect, it } from "vitest";
import { openerFor } from "../../../src/cli/open-url.js";
import { runDispatch, startFakeDaemon, TOKEN, withTempHome } from "./cli-harness.js";

const CODE = "c".repeat(43);

async function withSignInDaemon<T>(
  work: (daemon: Awaited<ReturnType<typeof startFakeDaemon>>) => Promise<T>,
): Promise<T> {
  const daemon = await startFakeDaemon((request) =>
    request.method === "POST" && request.url === "/v1/dashboard/sign-in-codes"
      ? {
          status: 201,
          body: { code: CODE, expires_at: "2026-02-07T15:01:00.000Z", expires_in_seconds: 60 },
        }
      : { status: 404 },
  );
  try {
    return await work(daemon);
  } finally {
    await daemon.close();
  }
}

describe("dispatch dashboard", () => {
  it("opens the one-time link in the browser, asking for the code with the token", async () => {
    await withTempHome((home) =>
      withSignInDaemon(async (daemon) => {
        const opened: string[] = [];
        const result = await runDispatch(["dashboard"], {
          home,
          port: daemon.port,
          openUrl: (url) => {
            opened.push(url);
            return Promise.resolve(true);
          },
        });
        expect(result.exitCode).toBe(0);
        expect(opened).toEqual([`http://127.0.0.1:${daemon.port}/#code=${CODE}`]);
        expect(daemon.requests[0]!.authorization).toBe(`Bearer ${TOKEN}`);
        expect(result.stdout).toBe("");
        expect(result.stderr).toContain("Opened the dashboard");
      }),
    );
  });

  it("--print prints the link and opens nothing", async () => {
    await withTempHome((home) =>
      withSignInDaemon(async (daemon) => {
        const result = await runDispatch(["dashboard", "--print"], {
          home,
          port: daemon.port,
          openUrl: () => Promise.reject(new Error("must not open with --print")),
        });
        expect(result.exitCode).toBe(0);
        expect(result.stdout).toBe(`http://127.0.0.1:${daemon.port}/#code=${CODE}\n`);
        expect(result.stderr).toContain("within 60 seconds");
      }),
    );
  });

  it("says the daemon is not running when nothing answers", async () => {
    await withTempHome(async (home) => {
      const result = await runDispatch(["dashboard"], { home, port: 1 });
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toMatch(/dispatch is not running|connection to dispatch/);
    });
  });
});

describe("the browser opener", () => {
  it("uses open on macOS and xdg-open on Linux only with a display", () => {
    const url = "http://127.0.0.1:7878/#code=x";
    expect(openerFor(url, { platform: "darwin", env: {} })).toEqual(["open", url]);
    expect(openerFor(url, { platform: "linux", env: { DISPLAY: ":0" } })).toEqual([
      "xdg-open",
      url,
    ]);
    expect(openerFor(url, { platform: "linux", env: { WAYLAND_DISPLAY: "wayland-0" } })).toEqual([
      "xdg-open",
      url,
    ]);
    expect(openerFor(url, { platform: "linux", env: {} })).toBeUndefined();
    expect(openerFor(url, { platform: "win32", env: {} })).toBeUndefined();
  });
});
