import { describe, expect, it } from "vitest";
import { planSystemPackages, type SystemObservation } from "../../support/system-packages.js";

const DEBIAN: SystemObservation = {
  wanted: ["chromium", "systemd", "curl", "postgresql"],
  installed: new Set(["systemd", "curl"]),
  hasAptGet: true,
  isRoot: true,
  hasPasswordlessSudo: false,
};

describe("npm test's Debian packages", () => {
  it("does nothing when every package is installed", () => {
    expect(planSystemPackages({ ...DEBIAN, installed: new Set(DEBIAN.wanted) })).toEqual({
      kind: "ready",
    });
  });

  it("installs what is missing with apt-get, as root", () => {
    expect(planSystemPackages(DEBIAN)).toEqual({
      kind: "install",
      missing: ["chromium", "postgresql"],
      commands: [
        ["apt-get", "update"],
        [
          "env",
          "DEBIAN_FRONTEND=noninteractive",
          "apt-get",
          "install",
          "-y",
          "chromium",
          "postgresql",
        ],
      ],
    });
  });

  it("uses sudo when it needs no password", () => {
    const plan = planSystemPackages({ ...DEBIAN, isRoot: false, hasPasswordlessSudo: true });
    expect(plan.kind === "install" && plan.commands.map((command) => command[0])).toEqual([
      "sudo",
      "sudo",
    ]);
  });

  it("otherwise stops before any test, with the one command that fixes it", () => {
    expect(planSystemPackages({ ...DEBIAN, isRoot: false })).toEqual({
      kind: "stop",
      line:
        "npm test needs the Debian packages chromium, postgresql: install them with " +
        "`sudo apt-get update && sudo apt-get install -y chromium postgresql`, then run npm test again.",
    });
  });

  it("on a system without dpkg and apt-get says what the tests need and goes on", () => {
    const plan = planSystemPackages({ ...DEBIAN, installed: undefined, hasAptGet: false });
    expect(plan.kind).toBe("note");
    expect(plan.kind === "note" && plan.line).toContain("Chromium at /usr/bin/chromium");
  });
});
