import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { launchChromium, type Browser } from "../support/browser.js";
import { clippedElements, sidewaysOverflow } from "../support/dashboard-page.js";
import { startDaemonProcess, type DaemonProcess } from "../support/daemon-process.js";
import { makeDaemonHome, type DaemonHome } from "../support/daemon-home.js";

/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) against the real
 * daemon as a child process and the stand-in model. The tests run in order and share one page,
 * as a person would use it: sign in, watch sessions appear, read one, send, restart, check health.
 */
const JOHN = "+15551234567";
const JANE = "+15559876543";
/** Not in contacts.json at first: the daemon refuses to answer it until it is added. */
const STRANGER = "+15550001111";
const SCREENSHOTS = path.resolve(import.meta.dirname, "../../test-results/dashboard");
const WAIT_MS = 20_000;

let model: StandInModel;
let home: DaemonHome;
let daemon: DaemonProcess | undefined;
let browser: Browser | undefined;
let page: Page;
let origin: string;
/** Every URL the page asked for, to prove it never leaves the daemon. */
const requested: string[] = [];

beforeAll(async () => {
  // First, so that a missing Chromium fails the tests with how to install it, before anything else.
  browser = await launchChromium();
  model = await startStandInModel();
  home = await makeDaemonHome({
    modelUrl: model.url,
    contacts: {
      contacts: [
        { name: "John Doe", tier: "favorite", handles: [JOHN] },
        { name: "Jane Roe", tier: "family", handles: [JANE] },
      ],
    },
  });
  daemon = await startDaemonProcess(home.env);
  origin = `http://127.0.0.1:${daemon.port}`;
  await mkdir(SCREENSHOTS, { recursive: true });
  page = await browser.context.newPage();
  page.on("request", (request) => requested.push(request.url()));
}, 90_000);

afterAll(async () => {
  await browser?.close();
  if (daemon) await daemon.stop("SIGKILL");
  await model?.close();
  await home?.remove();
});

async function send(chatId: string, text: string): Promise<string> {
  const response = await daemon!.api("POST", "/v1/messages", { chat_id: chatId, text, wait: true });
  expect(response.status, JSON.stringify(response.json)).toBe(200);
  return (response.json as { reply: string }).reply;
}

/** Retries `read` until the expectation holds, for up to `WAIT_MS`. */
function poll<T>(read: () => Promise<T> | T) {
  return expect.poll(read, { timeout: WAIT_MS, interval: 100 });
}

/** The dollars in a cost as the page shows it ("cost $0.0014", "$0.12+"); NaN for "–". */
async function dollars(locator: Locator): Promise<number> {
  const text = (await locator.textContent()) ?? "";
  const match = /\$(\d+(?:\.\d+)?)/.exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

interface SessionDetail {
  session: { cost_so_far_usd: number | null; cost_unknown_turns: number };
  transcript: { cost_usd: number | null; inputs: { text: string }[] }[];
}

/** What the page reads for a session: its view, and its transcript with each turn's cost. */
async function detail(chatId: string): Promise<SessionDetail> {
  const response = await daemon!.api("GET", `/v1/dashboard/sessions/${encodeURIComponent(chatId)}`);
  expect(response.status).toBe(200);
  return response.json as SessionDetail;
}

function row(chatId: string): Locator {
  return page.locator(`tr[data-chat-id="${chatId}"]`);
}

async function screenshot(name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Answers the confirmation dialog, checking it names what it is about. */
async function confirm(expectedTitle: RegExp, answer: "Escape" | RegExp): Promise<void> {
  const dialog = page.getByRole("dialog");
  await poll(() => dialog.isVisible()).toBe(true);
  expect(await dialog.getByRole("heading").textContent()).toMatch(expectedTitle);
  // Focus starts on Cancel, the safe answer.
  expect(await page.evaluate("document.activeElement.textContent")).toBe("Cancel");
  if (answer === "Escape") await page.keyboard.press("Escape");
  else await dialog.getByRole("button", { name: answer }).click();
  await poll(() => dialog.isVisible()).toBe(false);
}

describe("the dashboard in a browser", () => {
  it("asks for the token, refuses a wrong one, and never puts it in the URL", async () => {
    await page.goto(`${origin}/`);
    await page.getByLabel("API token").fill("not-the-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await poll(() => page.locator("#login-error").textContent()).toContain(
      "That token is not accepted",
    );

    await page.getByLabel("API token").fill(daemon!.token);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Sessions", level: 1 }).waitFor();
    await poll(() => page.locator("#connection").textContent()).toBe("Live");
    // Focus moves from the sign-in form to the view it opened.
    expect(await page.evaluate("document.activeElement.textContent")).toBe("Sessions");
    await poll(() => page.getByText("No sessions yet").isVisible()).toBe(true);
    expect(page.url()).not.toContain(daemon!.token);
    expect(requested.some((url) => url.includes(daemon!.token))).toBe(false);
    expect(await page.evaluate("sessionStorage.getItem('dispatch.api-token')")).toBe(daemon!.token);
  });

  it("shows two contacts' sessions as they message, live, without reloading", async () => {
    const navigations = requested.filter((url) => url === `${origin}/`).length;

    expect(await send(JOHN, "remember the word cinnamon")).toContain("I will remember cinnamon");
    await row(JOHN).waitFor({ timeout: WAIT_MS });
    await poll(() => row(JOHN).locator("th.contact a").textContent()).toBe("John Doe");
    await poll(() => row(JOHN).locator('[data-key="turns"]').textContent()).toBe("1");
    await poll(() => row(JOHN).locator('[data-key="tier"]').textContent()).toBe("favorite");
    // The cost so far, from the turn the daemon recorded in its journal.
    await poll(() => dollars(row(JOHN).locator('[data-key="cost"]'))).toBeGreaterThan(0);

    const heightBefore = (await row(JOHN).boundingBox())!.height;
    expect(await send(JANE, "remember the word basil")).toContain("I will remember basil");
    await row(JANE).waitFor({ timeout: WAIT_MS });
    await poll(() => page.locator("#announcer").textContent()).toContain("Jane Roe");
    await poll(() => page.locator("p.count").textContent()).toBe("2 sessions");
    // Rows keep their height while the list updates: nothing jumps.
    expect((await row(JOHN).boundingBox())!.height).toBe(heightBefore);
    expect((await row(JANE).boundingBox())!.height).toBe(heightBefore);
    expect(requested.filter((url) => url === `${origin}/`).length).toBe(navigations);
    await screenshot("sessions");
  });

  it("sorts by a column header from the keyboard and filters by name", async () => {
    const contactHeader = page.locator('th[data-key="contact"]');
    await contactHeader.getByRole("button").focus();
    await page.keyboard.press("Enter");
    await poll(() => contactHeader.getAttribute("aria-sort")).toBe("ascending");
    const order = async () => {
      const rows = await page.locator("tbody tr").all();
      return Promise.all(rows.map((row) => row.getAttribute("data-chat-id")));
    };
    expect(await order()).toEqual([JANE, JOHN]);
    await page.keyboard.press("Enter");
    await poll(() => contactHeader.getAttribute("aria-sort")).toBe("descending");
    expect(await order()).toEqual([JOHN, JANE]);

    await page.getByLabel("Filter").fill("jane");
    await poll(order).toEqual([JANE]);
    await poll(() => page.locator("p.count").textContent()).toBe("2 sessions, 1 shown");
    await page.getByLabel("Filter").fill("");
    await poll(order).toEqual([JOHN, JANE]);
  });

  it("opens a session and shows its conversation, with tool calls folded", async () => {
    await send(JOHN, 'tell me [[tool mcp__dispatch__send_message {"text":"hello from the tool"}]]');
    await row(JOHN).getByRole("link", { name: "John Doe" }).click();
    await page.getByRole("heading", { name: "John Doe", level: 1 }).waitFor();
    expect(page.url()).toBe(`${origin}/#/session/${encodeURIComponent(JOHN)}`);

    const turns = page.locator("ol.turns > li");
    await poll(() => turns.count()).toBe(2);
    const first = turns.nth(0);
    expect(await first.locator(".bubble.in .text").textContent()).toBe(
      "remember the word cinnamon",
    );
    expect(await first.locator(".bubble.in .who").textContent()).toContain("John Doe via http");
    expect(await first.locator(".bubble.out .text").textContent()).toContain(
      "I will remember cinnamon",
    );
    // Each turn has its timing and its own cost (the CLI's transcript has none: the daemon
    // records each turn's cost in its journal and matches it to the turn by the message's UUID).
    expect(await first.locator(".turn-time").textContent()).toMatch(/\d+(\.\d)? (ms|s)$/);
    expect(await dollars(first.locator(".turn-cost"))).toBeGreaterThan(0);
    expect(await dollars(turns.nth(1).locator(".turn-cost"))).toBeGreaterThan(0);
    // The cost so far is the sum of the turns' costs.
    const { session, transcript } = await detail(JOHN);
    expect(transcript.map((turn) => turn.cost_usd! > 0)).toEqual([true, true]);
    expect(session.cost_so_far_usd).toBeCloseTo(
      transcript.reduce((sum, turn) => sum + turn.cost_usd!, 0),
      10,
    );
    expect(await dollars(page.locator('[data-fact="Cost so far"]'))).toBeGreaterThan(0);

    const tool = turns.nth(1).locator("details.tool");
    expect(await tool.locator(".tool-name").textContent()).toBe("mcp__dispatch__send_message");
    expect(await tool.locator(".tool-summary").textContent()).toBe("hello from the tool");
    expect(await tool.getAttribute("open")).toBeNull();
    await tool.locator("summary").click();
    expect(await tool.getAttribute("open")).toBe("");
    expect(await tool.locator("pre").first().textContent()).toContain(
      '"text": "hello from the tool"',
    );
    expect(await tool.locator("pre").nth(1).textContent()).toBe("Sent.");

    const registry = JSON.parse((await page.locator("pre.registry").textContent())!) as Record<
      string,
      { session_name: string; tier: string }
    >;
    expect(registry[JOHN]).toMatchObject({ session_name: "john-doe", tier: "favorite" });
    await screenshot("session");
  });

  it("sends a message as that chat from the page and shows the reply", async () => {
    await page
      .getByLabel("Send a message as this chat")
      .fill("what word did I ask you to remember?");
    await page.getByRole("button", { name: "Send", exact: true }).click();
    await poll(() => page.locator("#send-reply").textContent()).toContain(
      "You asked me to remember cinnamon",
    );
    // The new turn shows up in the conversation too.
    await poll(() => page.locator("ol.turns > li").count()).toBe(3);
    expect(
      await page.locator("ol.turns > li").nth(2).locator(".bubble.out .text").textContent(),
    ).toContain("You asked me to remember cinnamon");
    await screenshot("session-sent");
  });

  it("stops and restarts a session after confirmation, and shows its state change", async () => {
    await page.getByRole("link", { name: "Sessions", exact: true }).click();
    const state = row(JOHN).locator("span.state");
    await poll(() => state.textContent()).toBe("idle");

    // Cancelling (Escape) does nothing.
    await row(JOHN).getByRole("button", { name: "Forget John Doe" }).click();
    await confirm(/Forget this session/, "Escape");
    expect(await row(JOHN).count()).toBe(1);

    await row(JOHN).getByRole("button", { name: "Stop John Doe" }).click();
    await confirm(/Stop this session/, /^Stop$/);
    await poll(() => state.textContent()).toBe("stopped");
    // Actions match the state: nothing to stop now, and Start rather than Restart.
    const buttons = async () =>
      (await row(JOHN).getByRole("button").allTextContents()).map((text) => text.trim());
    await poll(buttons).toEqual(["Start John Doe", "Forget John Doe"]);

    await row(JOHN).getByRole("button", { name: "Start John Doe" }).click();
    await confirm(/Start this session/, /^Start$/);
    await poll(() => state.textContent()).toMatch(/^(starting|idle)$/);
    await poll(buttons).toEqual(["Restart John Doe", "Stop John Doe", "Forget John Doe"]);
    await poll(() => row(JOHN).locator('[data-key="restarts"]').textContent()).toBe("1");
    await poll(() => page.locator("#notice").textContent()).toBe("John Doe: session started.");
    // The restart went to the daemon: the API says so too.
    const session = await daemon!.api("GET", `/v1/sessions/${encodeURIComponent(JOHN)}`);
    expect(session.json).toMatchObject({ restarts: 1 });
  });

  it("gives the first turn of a resumed session its own cost, not the session's total", async () => {
    const before = await detail(JOHN);
    // The restart above resumed the session in a new agent process, which carries the running
    // total its transcript saved: the turn's own cost is found from the turn recorded before.
    expect(await send(JOHN, "are you still there?")).toContain("are you still there?");
    // The transcript mirror is written in batches: the turn may show a moment after the reply.
    await poll(async () => (await detail(JOHN)).transcript.length).toBe(
      before.transcript.length + 1,
    );
    const after = await detail(JOHN);
    const resumed = after.transcript.at(-1)!;
    expect(resumed.inputs[0]!.text).toBe("are you still there?");
    expect(resumed.cost_usd).toBeGreaterThan(0);
    // About one turn's worth, not the three turns before it added in again.
    expect(resumed.cost_usd!).toBeLessThan(2 * before.transcript.at(-1)!.cost_usd!);
    expect(after.session).toMatchObject({ cost_unknown_turns: 0 });
    expect(after.session.cost_so_far_usd).toBeCloseTo(
      before.session.cost_so_far_usd! + resumed.cost_usd!,
      10,
    );
  });

  it("shows health: live sessions, charts of the last day, and the restart", async () => {
    await page.getByRole("link", { name: "Health", exact: true }).click();
    await page.getByRole("heading", { name: "Health", level: 1 }).waitFor();
    await poll(() => page.locator(".stat-value").first().textContent()).toBe("OK");
    const charts = page.locator("svg.chart");
    expect(await charts.count()).toBe(2);
    expect(await charts.nth(0).getAttribute("aria-label")).toMatch(/Messages per hour/);
    // Five messages so far, in this hour (or the one before): bars are drawn.
    await poll(() => charts.nth(0).locator("rect.bar").count()).toBeGreaterThan(0);
    const lastRestart = page.locator('section[aria-labelledby="restarts-title"] li').first();
    await poll(() => lastRestart.textContent()).toContain(JOHN);
    expect(await lastRestart.textContent()).toContain("started from the dashboard");
    // The spare process the agent keeps ready (`spareProcesses` is 1 by default).
    // Readable axes: each chart names its unit, counts from 0 in round steps, and labels hours,
    // the first with its day, the last "now".
    expect(await charts.locator("text.axis-title").allTextContents()).toEqual([
      "messages per hour",
      expect.stringMatching(/^reply time, (ms|seconds)$/),
    ]);
    for (const chart of [charts.nth(0), charts.nth(1)]) {
      const ticks = await chart.locator("text.tick").allTextContents();
      expect(ticks[0]).toBe("0");
      expect(ticks.at(-1)).toBe("now");
      expect(ticks.filter((tick) => /^\d{1,2}:00/.test(tick)).length).toBeGreaterThanOrEqual(3);
      expect(await chart.locator("text.day").first().textContent()).toMatch(/^(today|yesterday)$/);
    }
    const spares = page.locator(".stat", { hasText: "Spare processes" });
    await poll(() => spares.locator(".stat-value").textContent()).toBe("1 of 1");
    // Messages and reply latency come from the daemon's own events, as they happen.
    const health = (await daemon!.api("GET", "/v1/dashboard/health")).json as {
      hours: { messages: number; replies: number; latency_avg_ms: number | null }[];
    };
    const hours = health.hours.filter((hour) => hour.messages > 0);
    expect(hours.reduce((sum, hour) => sum + hour.messages, 0)).toBe(5);
    expect(hours.reduce((sum, hour) => sum + hour.replies, 0)).toBe(5);
    expect(hours.every((hour) => hour.latency_avg_ms !== null && hour.latency_avg_ms > 0)).toBe(
      true,
    );
    await screenshot("health");
  });

  it("fits a 375 px phone screen without sideways scrolling", async () => {
    await page.setViewportSize({ width: 375, height: 812 });
    await page.getByRole("link", { name: "Sessions", exact: true }).click();
    await row(JANE).waitFor();
    const overflow = await page.evaluate<number>(
      "document.documentElement.scrollWidth - document.documentElement.clientWidth",
    );
    expect(overflow).toBeLessThanOrEqual(0);
    // Cards are one height whatever their values ("just now", "6 s ago"): updates move nothing.
    expect((await row(JOHN).boundingBox())!.height).toBe((await row(JANE).boundingBox())!.height);
    expect(await row(JANE).getByRole("button", { name: "Restart Jane Roe" }).isVisible()).toBe(
      true,
    );
    await screenshot("sessions-phone");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it("adds a contact from the Contacts view: checked as the file is, written whole, answered at once", async () => {
    const contactsFile = path.join(home.home, "dispatch", "contacts.json");
    const original = await readFile(contactsFile, "utf8");
    const refused = await daemon!.api("POST", "/v1/messages", {
      chat_id: STRANGER,
      text: "hello?",
      wait: true,
    });
    expect(refused.status).toBe(403);

    await page.getByRole("link", { name: "Contacts", exact: true }).click();
    await page.getByRole("heading", { name: "Contacts", level: 1 }).waitFor();
    const cards = page.locator("ul.contact-list > li.card");
    await poll(() => cards.count()).toBe(2);
    const john = cards.filter({ hasText: "John Doe" });
    expect(await john.locator(".handle").first().textContent()).toContain("session john-doe");
    expect(await page.locator("p.count").textContent()).toBe("2 contacts");

    await page.getByRole("button", { name: "Add a contact" }).click();
    expect(await page.evaluate("document.activeElement.id")).toBe("contact-name");
    await page.getByLabel("Name").fill("Sam Poe");
    await page.getByLabel("Tier").selectOption("favorite");
    const handles = page.getByLabel("Phone numbers and email addresses");
    // John's number, written another way: refused as the daemon refuses it in the file.
    await handles.fill("+1 (555) 000-1111\n+1 555 123 4567");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    const formError = page.locator(".form-error");
    await poll(() => formError.textContent()).toContain("both claim it");
    expect(await formError.textContent()).toMatch(
      /^This contact cannot be saved:\n\s+- handle 2: /,
    );
    expect(await readFile(contactsFile, "utf8")).toBe(original);

    await handles.fill("+1 (555) 000-1111\nsam@example.com");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await poll(() => cards.count()).toBe(3);
    await poll(() => page.locator("#notice").textContent()).toContain("Saved Sam Poe");
    const written = JSON.parse(await readFile(contactsFile, "utf8")) as {
      contacts: { name: string; tier: string; handles: string[] }[];
    };
    expect(written.contacts.map((contact) => contact.name)).toEqual([
      "John Doe",
      "Jane Roe",
      "Sam Poe",
    ]);
    expect(written.contacts[2]).toEqual({
      name: "Sam Poe",
      tier: "favorite",
      handles: ["+1 (555) 000-1111", "sam@example.com"],
    });
    // Applied without a restart: the sender refused a moment ago is answered, as Sam Poe.
    expect(await send(STRANGER, "hello again")).toContain("hello again");
    const session = await daemon!.api("GET", `/v1/sessions/${encodeURIComponent(STRANGER)}`);
    expect(session.json).toMatchObject({ contact_name: "Sam Poe", tier: "favorite" });
    await screenshot("contacts");
  });

  it("refuses a contact edit made to an old copy of contacts.json, keeping the hand edit", async () => {
    const contactsFile = path.join(home.home, "dispatch", "contacts.json");
    const sam = page.locator("ul.contact-list > li.card").filter({ hasText: "Sam Poe" });
    await sam.getByRole("button", { name: "Edit Sam Poe" }).click();
    await page.getByLabel("Tier").selectOption("family");
    // Meanwhile someone edits the file by hand.
    const byHand = JSON.parse(await readFile(contactsFile, "utf8")) as Record<string, unknown>;
    const edited = `${JSON.stringify({ ...byHand, groups: [{ chat_id: "chat987654321", name: "Book Club", tier: "family" }] }, null, 2)}\n`;
    await writeFile(contactsFile, edited);
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await poll(() => page.locator(".form-error").textContent()).toContain("changed since");
    expect(await readFile(contactsFile, "utf8")).toBe(edited);
    // The list now shows the file as it is; saving again applies the change to it.
    await poll(() => page.getByRole("heading", { name: "Book Club" }).count()).toBe(1);
    await page.getByRole("button", { name: "Save", exact: true }).click();
    // Saved: the form closes, and the file has both the hand edit and the change.
    await poll(() => page.locator("#contact-name").isVisible()).toBe(false);
    const saved = JSON.parse(await readFile(contactsFile, "utf8")) as {
      contacts: { name: string; tier: string }[];
      groups: { name: string }[];
    };
    expect(saved.contacts[2]).toMatchObject({ name: "Sam Poe", tier: "family" });
    expect(saved.groups).toEqual([expect.objectContaining({ name: "Book Club" })]);
  });

  it("clips nothing and scrolls nothing sideways, on a phone, a small laptop and a wide screen", async () => {
    const views = [
      { hash: "#/sessions", heading: "Sessions" },
      { hash: `#/session/${encodeURIComponent(JOHN)}`, heading: "John Doe" },
      { hash: "#/health", heading: "Health" },
      { hash: "#/contacts", heading: "Contacts" },
      { hash: "#/log", heading: "Log" },
    ];
    for (const [width, height] of [
      [375, 812],
      [1024, 768],
      [1440, 900],
    ] as const) {
      await page.setViewportSize({ width, height });
      for (const view of views) {
        await page.evaluate(`location.hash = ${JSON.stringify(view.hash)}`);
        await page.getByRole("heading", { name: view.heading, level: 1 }).waitFor();
        if (view.hash === "#/health") await poll(() => page.locator("svg.chart").count()).toBe(2);
        if (view.hash.startsWith("#/session/"))
          await poll(() => page.locator("ol.turns > li").count()).toBeGreaterThan(0);
        if (view.hash === "#/contacts")
          await poll(() => page.locator("ul.contact-list > li.card").count()).toBe(3);
        if (view.hash === "#/log")
          await poll(() => page.locator("li.log-line").count()).toBeGreaterThan(5);
        await screenshot(`${view.hash.split("/")[1]}-${width}`);
        const where = `${view.heading} at ${width} px`;
        expect(await sidewaysOverflow(page), where).toBeLessThanOrEqual(0);
        expect(await clippedElements(page), where).toEqual([]);
      }
    }
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByRole("link", { name: "Sessions", exact: true }).click();
  });

  it("forgets a session after confirmation: its row goes, and focus stays in the view", async () => {
    await row(JANE).getByRole("button", { name: "Forget Jane Roe" }).click();
    await confirm(/Forget this session/, /^Forget$/);
    await poll(() => row(JANE).count()).toBe(0);
    expect(await page.evaluate("document.activeElement.textContent")).toBe("Sessions");
    const registered = await daemon!.api("GET", `/v1/sessions/${encodeURIComponent(JANE)}`);
    expect(registered.status).toBe(404);
  });

  it("made no request anywhere but the daemon", () => {
    expect(requested.length).toBeGreaterThan(5);
    const elsewhere = requested.filter(
      (url) => !url.startsWith(`${origin}/`) && !url.startsWith("data:"),
    );
    expect(elsewhere).toEqual([]);
  });
});
