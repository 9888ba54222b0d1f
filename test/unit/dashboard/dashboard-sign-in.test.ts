import { describe, expect, it } from "vitest";
import { createDashboardRoutes } from "../../../src/dashboard/dashboard-routes.js";
import { createSignInCodes } from "../../../src/dashboard/sign-in-codes.js";
import { createLogRing } from "../../../src/logging/log-ring.js";
import { ManualClock } from "../../support/manual-clock.js";
import { createMemoryLogger } from "../../support/memory-logger.js";
import { FakeDashboardContacts } from "./fake-dashboard-contacts.js";
import { FakeDashboardSource } from "./fake-dashboard-source.js";

/** `dispatch dashboard`'s one-time sign-in codes: issued with the token, traded once for it. */
const TOKEN = "test-token-0123456789";

function setUp() {
  const clock = new ManualClock();
  const app = createDashboardRoutes({
    source: new FakeDashboardSource(),
    contacts: new FakeDashboardContacts(),
    log: createLogRing(),
    token: TOKEN,
    logger: createMemoryLogger(),
    clock,
  });
  const issue = (authorization: string | null = `Bearer ${TOKEN}`) =>
    app.request("/v1/dashboard/sign-in-codes", {
      method: "POST",
      headers: authorization === null ? {} : { Authorization: authorization },
    });
  const exchange = (body: unknown) =>
    app.request("/v1/dashboard/sign-in", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  const newCode = async (): Promise<string> => {
    const response = await issue();
    expect(response.status).toBe(201);
    return ((await response.json()) as { code: string }).code;
  };
  return { clock, issue, exchange, newCode };
}

async function errorCode(response: Response): Promise<string> {
  return ((await response.json()) as { error: { code: string } }).error.code;
}

describe("the dashboard's sign-in codes", () => {
  it("issues a random, short-lived code to a caller with the token, never stored by a cache", async () => {
    const { clock, issue } = setUp();
    const response = await issue();
    expect(response.status).toBe(201);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const body = (await response.json()) as {
      code: string;
      expires_at: string;
      expires_in_seconds: number;
    };
    expect(body.code).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(body.code).not.toContain(TOKEN);
    expect(body.expires_in_seconds).toBe(60);
    expect(Date.parse(body.expires_at)).toBe(clock.now() + 60_000);
    const other = (await (await issue()).json()) as { code: string };
    expect(other.code).not.toBe(body.code);
  });

  it("refuses to issue a code without the token, or with a wrong one", async () => {
    const { issue } = setUp();
    const missing = await issue(null);
    expect(missing.status).toBe(401);
    expect(await errorCode(missing)).toBe("unauthorized");
    const wrong = await issue("Bearer not-the-token");
    expect(wrong.status).toBe(401);
    expect(await errorCode(wrong)).toBe("unauthorized");
  });

  it("trades a code for the token once, without a token; a second try is refused", async () => {
    const { exchange, newCode } = setUp();
    const code = await newCode();
    const first = await exchange({ code });
    expect(first.status).toBe(200);
    expect(first.headers.get("cache-control")).toBe("no-store");
    expect(await first.json()).toEqual({ token: TOKEN });
    const second = await exchange({ code });
    expect(second.status).toBe(401);
    const body = (await second.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("sign_in_code_invalid");
    expect(body.error.message).toContain("used already");
    expect(body.error.message).toContain("dispatch dashboard");
  });

  it("refuses a code after its minute, saying it expired", async () => {
    const { clock, exchange, newCode } = setUp();
    const code = await newCode();
    clock.advance(60_000);
    const late = await exchange({ code });
    expect(late.status).toBe(401);
    const body = (await late.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("sign_in_code_expired");
    expect(body.error.message).toContain("expired");
    // Spent by the refusal too: no second chance.
    expect(await errorCode(await exchange({ code }))).toBe("sign_in_code_invalid");
  });

  it("takes a code just before it expires", async () => {
    const { clock, exchange, newCode } = setUp();
    const code = await newCode();
    clock.advance(59_999);
    expect((await exchange({ code })).status).toBe(200);
  });

  it("refuses a code it never issued, and a body without a code, with what to send", async () => {
    const { exchange } = setUp();
    expect(await errorCode(await exchange({ code: "A".repeat(43) }))).toBe("sign_in_code_invalid");
    const bad = await exchange({ token: TOKEN });
    expect(bad.status).toBe(400);
    expect(await errorCode(bad)).toBe("bad_request");
  });
});

describe("the sign-in code store", () => {
  it("keeps a bounded number of codes, forgetting the oldest first", () => {
    const clock = new ManualClock();
    const codes = createSignInCodes({ clock, maxCodes: 3 });
    const issued = [codes.issue(), codes.issue(), codes.issue(), codes.issue()];
    expect(codes.redeem(issued[0]!.code)).toBe("unknown");
    expect(codes.redeem(issued[3]!.code)).toBe("redeemed");
    expect(codes.redeem(issued[1]!.code)).toBe("redeemed");
  });
});
