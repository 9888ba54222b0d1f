import { beforeEach, describe, expect, it } from "vitest";
import { DispatchError } from "../../../src/utils/errors.js";
import type { ContactsView } from "../../../src/dashboard/dashboard-contacts.js";
import { createDashboardRoutes } from "../../../src/dashboard/dashboard-routes.js";
import { createLogRing } from "../../../src/logging/log-ring.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { FakeDashboardContacts } from "./fake-dashboard-contacts.js";
import { FakeDashboardSource } from "./fake-dashboard-source.js";

const TOKEN = "test-token-0123456789";
const JOHN = { name: "John Doe", tier: "favorite", handles: ["+15551234567"] };

let contacts: FakeDashboardContacts;
let app: ReturnType<typeof createDashboardRoutes>;

beforeEach(() => {
  contacts = new FakeDashboardContacts();
  app = createDashboardRoutes({
    source: new FakeDashboardSource(),
    contacts,
    log: createLogRing(),
    token: TOKEN,
    logger: createMemoryLogger(),
  });
});

const call = (method: string, route: string, body?: unknown, token = TOKEN) =>
  app.request(route, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });

const errorOf = async (response: Response) =>
  ((await response.json()) as { error: { code: string; message: string } }).error;

describe("the dashboard's contacts routes", () => {
  it("want the bearer token on every route", async () => {
    for (const [method, route] of [
      ["GET", "/v1/dashboard/contacts"],
      ["POST", "/v1/dashboard/contacts"],
      ["PUT", "/v1/dashboard/contacts/0"],
      ["DELETE", "/v1/dashboard/contacts/0"],
    ] as const) {
      const body = method === "GET" ? undefined : { version: "v1", contact: JOHN };
      const response = await call(method, route, body, "wrong");
      expect(response.status, `${method} ${route}`).toBe(401);
    }
    expect(contacts.calls).toEqual([]);
  });

  it("list the contacts, add one, replace it and remove it, each answering the new list", async () => {
    const listed = await call("GET", "/v1/dashboard/contacts");
    expect(listed.status).toBe(200);
    expect(await listed.json()).toMatchObject({ version: "v1", contacts: [] });

    const added = await call("POST", "/v1/dashboard/contacts", { version: "v1", contact: JOHN });
    expect(added.status).toBe(201);
    const afterAdd = (await added.json()) as ContactsView;
    expect(afterAdd).toMatchObject({ version: "v2", contacts: [{ index: 0, name: "John Doe" }] });

    const renamed = { ...JOHN, name: "John Q. Doe" };
    const updated = await call("PUT", "/v1/dashboard/contacts/0", {
      version: "v2",
      contact: renamed,
    });
    expect(updated.status).toBe(200);
    expect(await updated.json()).toMatchObject({ contacts: [{ name: "John Q. Doe" }] });

    const removed = await call("DELETE", "/v1/dashboard/contacts/0", { version: "v3" });
    expect(removed.status).toBe(200);
    expect(await removed.json()).toMatchObject({ version: "v4", contacts: [] });
    expect(contacts.calls).toEqual(["add John Doe", "update 0 John Q. Doe", "remove 0"]);
  });

  it("refuse a body that is not a change, naming the shape, and change nothing", async () => {
    for (const body of [
      "not json",
      {},
      { contact: JOHN },
      { version: "v1", contact: { ...JOHN, extra: true } },
      { version: "v1", contact: { ...JOHN, handles: "+15551234567" } },
      { version: "v1", contact: { ...JOHN, handles: new Array(101).fill("+15551234567") } },
    ]) {
      const response = await call("POST", "/v1/dashboard/contacts", body);
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect((await errorOf(response)).message).toContain('"contact": {"name": "...", "tier"');
    }
    const tooLarge = await call("POST", "/v1/dashboard/contacts", {
      version: "v1",
      contact: { ...JOHN, name: "x".repeat(70_000) },
    });
    expect(tooLarge.status).toBe(413);
    expect(contacts.calls).toEqual([]);
  });

  it("answer 404 for a contact number that is not one, and 400 for an invalid contact", async () => {
    for (const route of ["/v1/dashboard/contacts/-1", "/v1/dashboard/contacts/one"]) {
      const response = await call("PUT", route, { version: "v1", contact: JOHN });
      expect(response.status, route).toBe(404);
    }
    const missing = await call("DELETE", "/v1/dashboard/contacts/3", { version: "v1" });
    expect(missing.status).toBe(404);

    contacts.failure = new DispatchError(
      "contacts_invalid",
      "contacts.json, with this change, is invalid:\n  - contacts[0].handles[0]: not a number",
    );
    const invalid = await call("POST", "/v1/dashboard/contacts", { version: "v1", contact: JOHN });
    expect(invalid.status).toBe(400);
    expect(await errorOf(invalid)).toEqual({
      code: "contacts_invalid",
      message: expect.stringContaining("contacts[0].handles[0]: not a number") as string,
    });
  });

  it("answer 409 when the file changed since the page read it", async () => {
    const stale = await call("POST", "/v1/dashboard/contacts", { version: "v0", contact: JOHN });
    expect(stale.status).toBe(409);
    expect((await errorOf(stale)).code).toBe("contacts_changed");
    expect(contacts.contacts).toEqual([]);
  });
});
