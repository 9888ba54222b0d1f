/**
 * The cluster in the dashboard (issue 14), in a real browser (Debian's Chromium through
 * playwright-core) against the real daemon as a child process and the stand-in model: the Health
 * view's Nodes panel shows the daemon's node, and a session it served names it as its node.
 */

import os from "node:os";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultNodeId } from "../../src/config/database.js";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { launchChromium, type Browser } from "../support/browser.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { makeDaemonHome, type DaemonHome } from "../support/daemon-home.js";

const JOHN = "+15551234567";
const WAIT_MS = 20_000;

let model: StandInModel;
let home: DaemonHome;
let daemon: DaemonProcess | undefined;
let browser: Browser | undefined;
let page: Page;

beforeAll(async () => {
  browser = await launchChromium();
  model = await startStandInModel();
  home = await makeDaemonHome({
    modelUrl: model.url,
    contacts: { contacts: [{ name: "John Doe", tier: "favorite", handles: [JOHN] }] },
    config: { maxLiveSessions: 4, spareProcesses: 0, cluster: { leaseSeconds: 3 } },
  });
  daemon = await startDaemonProcess(home.env);
  page = await browser.context.newPage();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  if (daemon) await daemon.stop("SIGKILL");
  await model?.close();
  await home?.remove();
});

function poll<T>(read: () => Promise<T> | T) {
  return expect.poll(read, { timeout: WAIT_MS, interval: 100 });
}

describe("the dashboard shows the nodes", () => {
  it("lists the daemon's node in the Health view and names it on the session it served", async () => {
    const sent = await daemon!.api("POST", "/v1/messages", {
      chat_id: JOHN,
      text: "hello",
      wait: true,
    });
    expect(sent.status, JSON.stringify(sent.json)).toBe(200);
    const nodeId = defaultNodeId(os.hostname(), daemon!.port);

    await page.goto(`http://127.0.0.1:${daemon!.port}/`);
    await page.getByLabel("API token").fill(daemon!.token);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Sessions", level: 1 }).waitFor();

    await page.getByRole("link", { name: "Health", exact: true }).click();
    const panel = page.locator('section[aria-labelledby="nodes-title"]');
    await panel.getByRole("heading", { name: "Nodes" }).waitFor();
    const row = panel.locator(`tr[data-node-id="${nodeId}"]`);
    // A heartbeat (every second here) brings the live session's slot.
    await poll(() => row.locator("td").allTextContents()).toEqual([
      "serving",
      expect.stringMatching(/^alive, \d+ s ago$/),
      "1 of 4",
      "http",
      "1",
    ]);
    expect(await row.locator("th").textContent()).toBe(`${nodeId} (this one)`);
    expect(await panel.locator("tbody tr").count()).toBe(1);

    await page.goto(`http://127.0.0.1:${daemon!.port}/#/session/${encodeURIComponent(JOHN)}`);
    await poll(() => page.locator('[data-fact="Node"]').textContent()).toBe(nodeId);
  }, 90_000);
});
