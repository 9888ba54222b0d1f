import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { launchChromium, type Browser } from "../support/browser.js";
import { runCli, startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { makeDaemonHome, type DaemonHome } from "../support/daemon-home.js";

/**
 * `dispatch dashboard`: the real CLI asks the real daemon for a one-time sign-in link, and
 * Debian's Chromium opens it. The token never appears in a link; the code works once.
 */
const WAIT_MS = 20_000;

let model: StandInModel;
let home: DaemonHome;
let daemon: DaemonProcess | undefined;
let browser: Browser | undefined;
let cliEnv: NodeJS.ProcessEnv;

beforeAll(async () => {
  browser = await launchChromium();
  model = await startStandInModel();
  home = await makeDaemonHome({ modelUrl: model.url });
  daemon = await startDaemonProcess(home.env);
  // No DISPLAY and no DISPATCH_API_TOKEN: the CLI reads the token file, and has no browser.
  cliEnv = { PATH: process.env.PATH, HOME: home.home, DISPATCH_PORT: home.env.DISPATCH_PORT };
}, 90_000);

afterAll(async () => {
  await browser?.close();
  if (daemon) await daemon.stop("SIGKILL");
  await model?.close();
  await home?.remove();
});

/** The link `dispatch dashboard` printed on stdout, checked for its shape. */
async function printedLink(args: string[]): Promise<{ link: string; stderr: string }> {
  const result = await runCli(["dashboard", ...args], cliEnv);
  expect(result.code, result.stderr).toBe(0);
  const link = result.stdout.trim();
  expect(link).toMatch(
    new RegExp(`^http://127\\.0\\.0\\.1:${daemon!.port}/#code=[A-Za-z0-9_-]{43}$`),
  );
  expect(link).not.toContain(daemon!.token);
  return { link, stderr: result.stderr };
}

function exchange(code: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${daemon!.port}/v1/dashboard/sign-in`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ code }),
  });
}

describe("dispatch dashboard", () => {
  it("--print prints a link whose code gives the token once", async () => {
    const { link, stderr } = await printedLink(["--print"]);
    expect(stderr).toContain("once, within 60 seconds");
    const code = new URL(link).hash.slice("#code=".length);
    const first = await exchange(code);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ token: daemon!.token });
    const second = await exchange(code);
    expect(second.status).toBe(401);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe(
      "sign_in_code_invalid",
    );
  }, 60_000);

  it("prints the link, saying why, when there is no display to open a browser on", async () => {
    const { stderr } = await printedLink([]);
    expect(stderr).toContain("No browser to open here");
  }, 60_000);

  it("signs the browser in from the link, drops the code from the address, and stays signed in on reload", async () => {
    const { link } = await printedLink(["--print"]);
    const page = await browser!.context.newPage();
    const requested: string[] = [];
    page.on("request", (request) => requested.push(request.url()));
    await page.goto(link);
    await page.getByRole("heading", { name: "Sessions", level: 1 }).waitFor({ timeout: WAIT_MS });
    await expect
      .poll(() => page.locator("#connection").textContent(), { timeout: WAIT_MS })
      .toBe("Live");
    expect(await page.evaluate("location.hash")).toBe("");
    expect(page.url()).toBe(`http://127.0.0.1:${daemon!.port}/`);
    expect(await page.evaluate("sessionStorage.getItem('dispatch.api-token')")).toBe(daemon!.token);
    // Neither the code nor the token went to the server in an address.
    const code = new URL(link).hash.slice("#code=".length);
    expect(requested.some((url) => url.includes(code) || url.includes(daemon!.token))).toBe(false);

    await page.reload();
    await page.getByRole("heading", { name: "Sessions", level: 1 }).waitFor({ timeout: WAIT_MS });
    expect(await page.locator("#login").isHidden()).toBe(true);
    expect(await page.evaluate("location.hash")).toBe("");

    // The same link again, in a new tab: spent, so the page says so and asks for the token.
    const again = await browser!.context.newPage();
    await again.goto(link);
    await expect
      .poll(() => again.locator("#login-error").textContent(), { timeout: WAIT_MS })
      .toContain("used already");
    expect(await again.evaluate("location.hash")).toBe("");
    await page.close();
    await again.close();
  }, 90_000);
});
