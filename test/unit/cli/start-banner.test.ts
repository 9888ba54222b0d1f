import { describe, expect, it } from "vitest";
import { renderStartBanner } from "../../../src/cli/start-banner.js";
import type { StartInfo } from "../../../src/daemon/daemon.js";
import { runDispatch, withTempHome } from "./cli-harness.js";

const DEMO: StartInfo = {
  version: "0.1.0",
  demo: true,
  home: "/home/ada/dispatch",
  port: 7878,
  tokenFile: "/home/ada/dispatch/state/api-token",
  logFile: "/home/ada/dispatch/state/logs/dispatch.log",
  contacts: 0,
  answersEveryone: true,
  channels: [
    { name: "http", on: true },
    { name: "imessage", on: false, note: "macOS only" },
  ],
};

describe("the start banner", () => {
  it("says where everything is, that it is a demo, and one command to try", () => {
    expect(renderStartBanner(DEMO)).toBe(
      [
        "dispatch 0.1.0 is running in demo mode: replies come from the offline stand-in model, not from Claude.",
        "  dashboard  http://127.0.0.1:7878/  (sign in with the API token)",
        "  HTTP API   http://127.0.0.1:7878/v1  (docs/http-api.md)",
        "  API token  in /home/ada/dispatch/state/api-token",
        "  channels   http on, imessage off (imessage: macOS only)",
        "  contacts   0 in contacts.json; every chat is answered in demo mode",
        "  home       /home/ada/dispatch",
        "  log        /home/ada/dispatch/state/logs/dispatch.log  (dispatch logs -f)",
        "",
        'Try it:  dispatch send +15551234567 "Please remember the word pineapple"',
        "Ctrl-C stops dispatch.",
        "",
      ].join("\n"),
    );
  });

  it("names the token's variable, who is answered, and a channel that could not start", () => {
    const banner = renderStartBanner({
      ...DEMO,
      demo: false,
      tokenFile: undefined,
      contacts: 3,
      answersEveryone: false,
      channels: [
        { name: "http", on: true },
        { name: "imessage", on: false, note: "cannot read chat.db; `dispatch doctor` says why" },
      ],
    });
    expect(banner.split("\n")[0]).toBe("dispatch 0.1.0 is running.");
    expect(banner).toContain("  API token  from DISPATCH_API_TOKEN\n");
    expect(banner).toContain(
      '  contacts   3 in contacts.json; only they are answered (unknownSenders: "ignore")\n',
    );
    expect(banner).toContain("imessage: cannot read chat.db; `dispatch doctor` says why");
  });

  it("with the HTTP channel off says that send and the dashboard cannot reach it", () => {
    const banner = renderStartBanner({
      ...DEMO,
      port: undefined,
      channels: [{ name: "http", on: false, note: "channels.http.enabled is false" }],
    });
    expect(banner).not.toContain("http://127.0.0.1");
    expect(banner).toContain("The HTTP channel is off");
  });

  it("is printed on stderr by `dispatch start` once the daemon is up", async () => {
    await withTempHome(async (home) => {
      const result = await runDispatch(["start", "--demo"], {
        home,
        startDaemon: (options) => {
          options.onStarted?.(DEMO);
          return Promise.resolve();
        },
      });
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toBe("");
      expect(result.stderr).toBe(renderStartBanner(DEMO));
    });
  });
});
