import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium, type Browser } from "../support/browser.js";
import { clippedElements, sidewaysOverflow } from "../support/dashboard-page.js";
import { freePort, startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { makeTempHome } from "../support/real-manager.js";

/**
 * The dashboard of a daemon started as a newcomer starts it, `dispatch start --demo` (its own
 * stand-in model, every chat answered), in Debian's Chromium: the demo banner and the stand-in's
 * costs, the live log with secrets left out, and a Health view whose restarts, errors and
 * activity survive a `kill -9` of the daemon.
 */
const JOHN = "+15551234567";
const SCREENSHOTS = path.resolve(import.meta.dirname, "../../test-results/dashboard");
const WAIT_MS = 20_000;

let home: { home: string; remove(): Promise<void> };
let env: NodeJS.ProcessEnv;
let daemon: DaemonProcess | undefined;
let browser: Browser | undefined;
let page: Page;
let origin: string;

beforeAll(async () => {
  browser = await launchChromium();
  home = await makeTempHome();
  env = {
    PATH: process.env.PATH,
    HOME: home.home,
    DISPATCH_PORT: String(await freePort()),
    // Message bodies are logged at debug: the log view must still leave the token out.
    DISPATCH_LOG_LEVEL: "debug",
  };
  daemon = await startDaemonProcess(env, ["--demo"]);
  origin = `http://127.0.0.1:${daemon.port}`;
  await mkdir(SCREENSHOTS, { recursive: true });
  page = await browser.context.newPage();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  if (daemon) await daemon.stop("SIGKILL");
  await home?.remove();
});

function poll<T>(read: () => Promise<T> | T) {
  return expect.poll(read, { timeout: WAIT_MS, interval: 100 });
}

async function send(chatId: string, text: string): Promise<{ status: number; reply?: string }> {
  const response = await daemon!.api("POST", "/v1/messages", { chat_id: chatId, text, wait: true });
  return { status: response.status, reply: (response.json as { reply?: string }).reply };
}

async function screenshot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

async function open(hash: string, heading: string): Promise<void> {
  await page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
  await page.getByRole("heading", { name: heading, level: 1 }).waitFor({ timeout: WAIT_MS });
}

describe("the dashboard of a demo daemon", () => {
  it("says on every view that it runs in demo mode, and marks costs as the stand-in's", async () => {
    await page.goto(`${origin}/`);
    await page.getByLabel("API token").fill(daemon!.token);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Sessions", level: 1 }).waitFor();
    const banner = page.locator("#demo-banner");
    await poll(() => banner.isVisible()).toBe(true);
    expect(await banner.textContent()).toMatch(
      /Demo mode\.\s+Replies come from dispatch's offline stand-in model/,
    );

    const { status, reply } = await send(JOHN, "remember the word saffron");
    expect(status).toBe(200);
    expect(reply).toContain("[stand-in model]");
    const row = page.locator(`tr[data-chat-id="${JOHN}"]`);
    const cost = row.locator('[data-key="cost"]');
    await poll(() => cost.textContent()).toMatch(/^\$\d+(\.\d+)?stand-in$/);
    expect(await cost.locator(".sub").isVisible()).toBe(true);
    expect(await cost.locator(".value").getAttribute("title")).toContain("Not a real cost");

    await row.getByRole("link").click();
    await page.locator("ol.turns > li").first().waitFor({ timeout: WAIT_MS });
    expect(await page.locator(".turn-cost").first().textContent()).toMatch(/\(stand-in\)$/);
    expect(await page.locator('[data-fact="Cost so far"]').textContent()).toMatch(/\(stand-in\)$/);
    expect(await banner.isVisible()).toBe(true);
    await open("#/health", "Health");
    expect(await banner.isVisible()).toBe(true);
    await screenshot("demo-session-banner");
  });

  it("streams the daemon's log live, and never shows the API token", async () => {
    await open("#/log", "Log");
    const lines = page.locator("li.log-line");
    await poll(() => page.locator("li.log-line", { hasText: "daemon-start" }).count()).toBe(1);
    expect(await page.locator("li.log-line", { hasText: "daemon-start" }).textContent()).toContain(
      "demo=true",
    );
    const before = await lines.count();

    // The token in a message: the stand-in repeats it, and the reply's text is logged at debug.
    const { reply } = await send(JOHN, `my token is ${daemon!.token}`);
    expect(reply).toContain(daemon!.token);
    await poll(() => lines.count()).toBeGreaterThan(before);
    const tokenLine = page.locator("li.log-line", { hasText: /http-reply-text.*my token is/ });
    await poll(() => tokenLine.count()).toBe(1);
    // The daemon did log it (its own stdout has it), the page shows it redacted.
    expect(daemon!.output()).toContain(daemon!.token);
    expect(await tokenLine.textContent()).toContain("my token is [redacted]");
    expect(await page.content()).not.toContain(daemon!.token);

    // Filters: errors only hides every info line; text keeps the lines that have it.
    await page.getByLabel("Show").selectOption("error");
    await poll(() => page.locator("li.log-line[data-level='info']").count()).toBe(0);
    await page.getByLabel("Show").selectOption("debug");
    await page.getByLabel("Filter").fill("http-reply-text");
    await poll(() => lines.count()).toBe(2);
    expect((await lines.allTextContents()).every((text) => text.includes("http-reply-text"))).toBe(
      true,
    );
    await page.getByLabel("Filter").fill("");
    await screenshot("log");
  });

  it("keeps restarts, errors and activity across a kill -9 of the daemon", async () => {
    // A restart from the dashboard and an error turn, recorded...
    await open("#/sessions", "Sessions");
    const row = page.locator(`tr[data-chat-id="${JOHN}"]`);
    await row.getByRole("button", { name: `Restart ${JOHN}` }).click();
    await page
      .getByRole("dialog")
      .getByRole("button", { name: /^Restart$/ })
      .click();
    await poll(() => page.locator("#notice").textContent()).toContain("session restarted");
    expect((await send(JOHN, "[[error 400]] please fail")).status).toBe(502);
    await open("#/health", "Health");
    const restarts = page.locator('section[aria-labelledby="restarts-title"] li');
    const errors = page.locator('section[aria-labelledby="errors-title"] li');
    await poll(() => restarts.first().textContent()).toContain("requested from the dashboard");
    await poll(() => errors.first().textContent()).toContain("turn_error");
    const figures = async () => {
      const health = (await daemon!.api("GET", "/v1/dashboard/health")).json as {
        hours: { messages: number; replies: number; errors: number }[];
      };
      return health.hours.reduce(
        (sum, hour) => ({
          messages: sum.messages + hour.messages,
          replies: sum.replies + hour.replies,
          errors: sum.errors + hour.errors,
        }),
        { messages: 0, replies: 0, errors: 0 },
      );
    };
    const before = await figures();
    expect(before).toEqual({ messages: 3, replies: 2, errors: 1 });

    // ...then the daemon is killed outright, and started again on the same home.
    expect(await daemon!.stop("SIGKILL")).toBeNull();
    daemon = await startDaemonProcess(env, ["--demo"]);

    // The page reconnects by itself; the Health view still has it all, and the crash.
    await page.reload();
    await page.getByRole("heading", { name: "Health", level: 1 }).waitFor({ timeout: WAIT_MS });
    await poll(() => restarts.count()).toBe(2);
    expect(await restarts.nth(0).textContent()).toMatch(
      /dispatch.*started again after it stopped without shutting down/s,
    );
    expect(await restarts.nth(1).textContent()).toContain("requested from the dashboard");
    expect(await errors.first().textContent()).toContain("turn_error");
    expect(await page.getByText("No restarts in the last day").count()).toBe(0);
    expect(await figures()).toEqual(before);
    await poll(() => page.locator("svg.chart").first().locator("rect.bar").count()).toBeGreaterThan(
      0,
    );
    await screenshot("demo-health-after-kill");
  });

  it("clips nothing on the demo views, on a phone and a wide screen", async () => {
    for (const [width, height] of [
      [375, 812],
      [1440, 900],
    ] as const) {
      await page.setViewportSize({ width, height });
      for (const [hash, heading] of [
        ["#/sessions", "Sessions"],
        ["#/log", "Log"],
        ["#/health", "Health"],
      ] as const) {
        await open(hash, heading);
        if (hash === "#/sessions")
          await page.locator(`tr[data-chat-id="${JOHN}"]`).waitFor({ timeout: WAIT_MS });
        if (hash === "#/health") await poll(() => page.locator("svg.chart").count()).toBe(2);
        await screenshot(`demo-${hash.slice(2)}-${width}`);
        const where = `${heading} at ${width} px`;
        expect(await sidewaysOverflow(page), where).toBeLessThanOrEqual(0);
        expect(await clippedElements(page), where).toEqual([]);
      }
    }
  });
});
