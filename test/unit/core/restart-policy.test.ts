import { describe, expect, it } from "vitest";
import { asChatId } from "../../../src/utils/ids.js";
import { RestartPolicy } from "../../../src/core/restart-policy.js";

const CHAT = asChatId("+15551234567");
const OTHER = asChatId("+15559876543");

describe("RestartPolicy", () => {
  it("backs off exponentially with full jitter, up to the cap", () => {
    const policy = new RestartPolicy({ maxRestarts: 100, windowMs: 1_000, random: () => 0.999 });
    const delays = Array.from({ length: 8 }, (_, index) => {
      const decision = policy.next(CHAT, index * 10_000);
      return decision.action === "restart" ? decision.delayMs : -1;
    });
    expect(delays).toEqual([999, 1998, 3996, 7992, 15984, 31968, 59940, 59940]);
  });

  it("starts the backoff over after a good turn", () => {
    const policy = new RestartPolicy({ maxRestarts: 100, windowMs: 1_000, random: () => 0.5 });
    policy.next(CHAT, 0);
    policy.next(CHAT, 10_000);
    policy.succeeded(CHAT);
    expect(policy.next(CHAT, 20_000)).toEqual({ action: "restart", delayMs: 500, attempt: 0 });
  });

  it("quarantines after more than maxRestarts within the window, per chat", () => {
    const policy = new RestartPolicy({ maxRestarts: 3, windowMs: 60_000, random: () => 0 });
    for (const time of [0, 1_000, 2_000]) expect(policy.next(CHAT, time).action).toBe("restart");
    expect(policy.next(CHAT, 3_000)).toEqual({ action: "quarantine", restarts: 3 });
    expect(policy.next(OTHER, 3_000).action).toBe("restart");
  });

  it("forgets restarts that left the window, and everything on reset", () => {
    const policy = new RestartPolicy({ maxRestarts: 2, windowMs: 10_000, random: () => 0 });
    policy.next(CHAT, 0);
    policy.next(CHAT, 1_000);
    expect(policy.next(CHAT, 20_000).action).toBe("restart");
    policy.next(CHAT, 21_000);
    policy.reset(CHAT);
    expect(policy.next(CHAT, 22_000).action).toBe("restart");
  });
});
