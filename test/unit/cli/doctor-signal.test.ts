import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { checkSignal } from "../../../src/cli/doctor-checks.js";
import { startSignalCliStandIn, type SignalCliStandIn } from "../../support/signal-cli-stand-in.js";
import { closedPort, runDispatch } from "./cli-harness.js";

const ACCOUNT = "+15550000000";
const base = { enabled: true, url: "http://127.0.0.1:8080", account: ACCOUNT };
const reached = { ok: true as const, value: true as const };

describe("the doctor's Signal check", () => {
  it("is informational when the channel is off", () => {
    expect(checkSignal({ ...base, enabled: false }).status).toBe("info");
  });

  it("fails an unreachable daemon with the command that starts it", () => {
    const result = checkSignal({
      ...base,
      reachable: { ok: false, error: new Error("ECONNREFUSED") },
    });
    expect(result.status).toBe("fail");
    expect(result.message).toContain("ECONNREFUSED");
    expect(result.message).toContain(
      `signal-cli -a ${ACCOUNT} daemon --http 127.0.0.1:8080 --receive-mode=on-connection`,
    );
  });

  it("passes a daemon holding the account, fails one that does not", () => {
    const version = { ok: true as const, value: "0.13.22" };
    expect(
      checkSignal({
        ...base,
        reachable: reached,
        version,
        accounts: { ok: true, value: [ACCOUNT] },
      }),
    ).toEqual({
      status: "ok",
      message: `signal-cli 0.13.22 answers at http://127.0.0.1:8080 and holds the registered account ${ACCOUNT}.`,
    });
    const missing = checkSignal({
      ...base,
      reachable: reached,
      version,
      accounts: { ok: true, value: ["+15559999999"] },
    });
    expect(missing.status).toBe("fail");
    expect(missing.message).toContain("it holds +15559999999");
    expect(missing.message).toContain(`signal-cli -a ${ACCOUNT} register`);
  });

  it("passes a single-account daemon, saying which account it must be", () => {
    const result = checkSignal({
      ...base,
      reachable: reached,
      accounts: { ok: true, value: "single-account" },
    });
    expect(result.status).toBe("ok");
    expect(result.message).toContain(`make sure that is ${ACCOUNT}`);
  });
});

describe("dispatch doctor with Signal on", () => {
  let home: string;
  let signalCli: SignalCliStandIn | undefined;

  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), "dispatch-cli-"));
    await mkdir(join(home, "dispatch", "state"), { recursive: true });
  });
  afterEach(async () => {
    await signalCli?.close();
    signalCli = undefined;
    await rm(home, { recursive: true, force: true });
  });

  const configure = (url: string, account: string) =>
    writeFile(
      join(home, "dispatch", "config.json"),
      JSON.stringify({ channels: { signal: { enabled: true, url, account } } }),
    );

  it("asks signal-cli's daemon for its version and accounts", async () => {
    signalCli = await startSignalCliStandIn({ account: ACCOUNT });
    await configure(signalCli.url, ACCOUNT);
    const result = await runDispatch(["doctor"], {
      home,
      port: await closedPort(),
      env: { DISPATCH_API_TOKEN: "", ANTHROPIC_API_KEY: "sk-test" },
    });
    expect(result.stdout).toContain(
      `✓ signal-cli 0.13.99-stand-in answers at ${signalCli.url} and holds the registered account ${ACCOUNT}.`,
    );
    expect(signalCli.calls().map((call) => call.method)).toEqual(["version", "listAccounts"]);

    await configure(signalCli.url, "+15559999999");
    const wrong = await runDispatch(["doctor"], {
      home,
      port: await closedPort(),
      env: { DISPATCH_API_TOKEN: "", ANTHROPIC_API_KEY: "sk-test" },
    });
    expect(wrong.exitCode).toBe(1);
    expect(wrong.stdout).toContain(
      `does not hold +15559999999 (channels.signal.account); it holds ${ACCOUNT}`,
    );
  });

  it("fails when nothing listens at channels.signal.url", async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    await configure(url, ACCOUNT);
    const result = await runDispatch(["doctor"], {
      home,
      port: await closedPort(),
      env: { DISPATCH_API_TOKEN: "", ANTHROPIC_API_KEY: "sk-test" },
    });
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toContain(`✗ signal-cli's daemon at ${url} cannot be reached`);
  });
});
