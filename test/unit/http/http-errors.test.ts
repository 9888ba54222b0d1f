import { describe, expect, it } from "vitest";
import {
  RateLimitedError,
  statusForCode,
  toHttpError,
} from "../../../src/channels/http/http-errors.js";
import { DispatchError } from "../../../src/utils/errors.js";

describe("statusForCode", () => {
  it.each([
    ["bad_request", 400],
    ["invalid_json", 400],
    ["invalid_chat_id", 400],
    ["unauthorized", 401],
    ["unknown_sender", 403],
    ["not_found", 404],
    ["method_not_allowed", 405],
    ["payload_too_large", 413],
    ["rate_limited", 429],
    ["queue_full", 429],
    ["shutting_down", 503],
    ["quarantined", 503],
    ["no_credentials", 503],
    ["internal", 500],
    ["registry_corrupt", 500],
  ])("%s -> %i", (code, status) => {
    expect(statusForCode(code)).toBe(status);
  });

  it("does not treat inherited property names as codes", () => {
    expect(statusForCode("constructor")).toBe(500);
    expect(statusForCode("toString")).toBe(500);
  });
});

describe("toHttpError", () => {
  it("keeps a DispatchError's code and message", () => {
    const result = toHttpError(new DispatchError("unknown_sender", "Nobody answers +1555."));
    expect(result).toEqual({
      status: 403,
      body: { error: { code: "unknown_sender", message: "Nobody answers +1555." } },
      headers: {},
      unexpected: false,
    });
  });

  it("hides anything that is not a DispatchError behind `internal`", () => {
    const result = toHttpError(new TypeError("cannot read x of undefined at /src/secret.ts:12"));
    expect(result.status).toBe(500);
    expect(result.body.error.code).toBe("internal");
    expect(result.body.error.message).not.toContain("secret");
    expect(result.unexpected).toBe(true);
  });

  it("flags an unmapped DispatchError as unexpected (500)", () => {
    const result = toHttpError(new DispatchError("registry_corrupt", "sessions.json is broken"));
    expect(result.status).toBe(500);
    expect(result.unexpected).toBe(true);
  });

  it("gives a 429 a Retry-After: the error's own hint rounded up, or one second", () => {
    expect(toHttpError(new RateLimitedError("slow down", 12_001)).headers).toEqual({
      "Retry-After": "13",
    });
    expect(toHttpError(new RateLimitedError("slow down", 10)).headers["Retry-After"]).toBe("1");
    expect(toHttpError(new DispatchError("queue_full", "full")).headers["Retry-After"]).toBe("1");
    const queueFull = new RateLimitedError("full", 5_000, { code: "queue_full" });
    expect(toHttpError(queueFull)).toMatchObject({
      status: 429,
      body: { error: { code: "queue_full" } },
    });
  });

  it("asks for a bearer token on 401", () => {
    expect(toHttpError(new DispatchError("unauthorized", "no")).headers).toEqual({
      "WWW-Authenticate": "Bearer",
    });
  });
});
