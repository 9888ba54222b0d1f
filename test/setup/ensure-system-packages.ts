/**
 * `npm test`'s first step (the `pretest` script): makes sure the Debian packages named on the
 * command line are installed, installing them with apt-get when it can, before any test runs.
 * Usage: tsx test/setup/ensure-system-packages.ts chromium systemd curl
 */
import { spawnSync } from "node:child_process";
import { planSystemPackages } from "../support/system-packages.js";

const wanted = process.argv.slice(2);

function succeeds(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: "ignore" }).status === 0;
}

function installedPackages(): Set<string> | undefined {
  if (!succeeds("dpkg-query", ["--version"])) return undefined;
  return new Set(
    wanted.filter((name) => {
      const status = spawnSync("dpkg-query", ["-W", "-f=${Status}", name], { encoding: "utf8" });
      return status.status === 0 && status.stdout.includes("install ok installed");
    }),
  );
}

const plan = planSystemPackages({
  wanted,
  installed: installedPackages(),
  hasAptGet: succeeds("apt-get", ["--version"]),
  isRoot: process.getuid?.() === 0,
  hasPasswordlessSudo: succeeds("sudo", ["-n", "true"]),
});

switch (plan.kind) {
  case "ready":
    break;
  case "note":
    console.warn(plan.line);
    break;
  case "stop":
    console.error(plan.line);
    process.exitCode = 1;
    break;
  case "install": {
    console.warn(`npm test: installing the Debian packages ${plan.missing.join(", ")} (apt-get).`);
    for (const [command, ...args] of plan.commands) {
      const result = spawnSync(command!, args, { stdio: "inherit" });
      if (result.status !== 0) {
        console.error(
          `npm test: \`${[command, ...args].join(" ")}\` failed; install ${plan.missing.join(", ")} ` +
            "yourself, then run npm test again.",
        );
        process.exitCode = 1;
        break;
      }
    }
    break;
  }
}
