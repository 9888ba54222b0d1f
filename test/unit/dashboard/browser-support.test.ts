import { describe, expect, it } from "vitest";
import { CHROMIUM_ARGS, chromiumMissingMessage, findChromium } from "../../support/browser.js";

describe("the browser tests' Chromium", () => {
  it("is looked for only where asked, and its absence says how to install it", () => {
    expect(findChromium(["/no/such/chromium"])).toBeUndefined();
    expect(findChromium(["/no/such/chromium", process.execPath])).toBe(process.execPath);
    const message = chromiumMissingMessage(["/no/such/chromium"]);
    expect(message).toContain("/no/such/chromium");
    expect(message).toContain("sudo apt-get install chromium");
    expect(message).toContain(".ci/run");
  });

  it("runs headless, sandbox-free and quiet: no network of its own", () => {
    expect(CHROMIUM_ARGS).toEqual(
      expect.arrayContaining([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ]),
    );
  });
});
