/**
 * What `npm test` does about the Debian packages its tests need (Chromium for the dashboard's
 * browser tests, systemd's `systemd-analyze`, curl for the README's tour; PostgreSQL later):
 * nothing when they are installed; install them with apt-get when it can (as root, or with
 * sudo that needs no password); otherwise one line that says exactly how. Pure: the observations
 * come in, the plan goes out (`test/setup/ensure-system-packages.ts` observes and carries it out).
 */
export interface SystemObservation {
  /** The packages asked for, in order. */
  wanted: readonly string[];
  /** Which of them dpkg says are installed; undefined where there is no dpkg (not Debian). */
  installed: ReadonlySet<string> | undefined;
  hasAptGet: boolean;
  isRoot: boolean;
  /** `sudo -n true` works: sudo without a password. */
  hasPasswordlessSudo: boolean;
}

export type SystemPlan =
  | { kind: "ready" }
  | { kind: "install"; missing: string[]; commands: string[][] }
  /** Nothing can be done from here: say how, once, and stop before any test runs. */
  | { kind: "stop"; line: string }
  /** Not a Debian system: say what the tests need and go on (they name what they miss). */
  | { kind: "note"; line: string };

export function planSystemPackages(observation: SystemObservation): SystemPlan {
  const { wanted, installed } = observation;
  if (installed === undefined || !observation.hasAptGet) {
    return {
      kind: "note",
      line:
        `npm test: the end-to-end tests use Debian's ${wanted.join(", ")}; this system has no ` +
        "dpkg and apt-get to check or install them, so install their equivalents yourself " +
        "(Chromium at /usr/bin/chromium or CHROMIUM_PATH).",
    };
  }
  const missing = wanted.filter((name) => !installed.has(name));
  if (missing.length === 0) return { kind: "ready" };
  const sudo = observation.isRoot ? [] : observation.hasPasswordlessSudo ? ["sudo"] : undefined;
  if (sudo === undefined) {
    return {
      kind: "stop",
      line:
        `npm test needs the Debian packages ${missing.join(", ")}: install them with ` +
        `\`sudo apt-get update && sudo apt-get install -y ${missing.join(" ")}\`, then run npm test again.`,
    };
  }
  return {
    kind: "install",
    missing,
    commands: [
      [...sudo, "apt-get", "update"],
      [...sudo, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", ...missing],
    ],
  };
}
