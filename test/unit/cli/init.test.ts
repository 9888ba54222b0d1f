import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CommandRunner } from "../../../src/cli/service/service-manager.js";
import { loadConfig } from "../../../src/config/load-config.js";
import { asChatId } from "../../../src/utils/ids.js";
import { loadContacts } from "../../../src/identity/contacts.js";
import { closedPort, runDispatch } from "./cli-harness.js";

let home: string;
let configFile: string;
let contactsFile: string;
let port: number;

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), "dispatch-init-"));
  configFile = join(home, "dispatch", "config.json");
  contactsFile = join(home, "dispatch", "contacts.json");
  port = await closedPort();
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

const init = (
  args: string[],
  options: { stdinLines?: string[]; runCommand?: CommandRunner } = {},
) =>
  runDispatch(["init", ...args], {
    home,
    port,
    ...options,
    ...(options.stdinLines ? { stdinIsTTY: true } : {}),
    env: { DISPATCH_API_TOKEN: "", ANTHROPIC_API_KEY: "sk-test" },
  });

/** What the daemon would make of the files: its own loaders. */
async function asTheDaemonReadsThem() {
  const { config } = await loadConfig({ env: {}, homeDir: home, platform: "linux" });
  const contacts = await loadContacts(contactsFile, {
    knownTiers: Object.keys(config.tiers),
    ...(config.defaultRegion ? { defaultRegion: config.defaultRegion } : {}),
  });
  return { config, contacts };
}

describe("dispatch init --yes (for scripts)", () => {
  it("writes config.json and contacts.json from the flags, files the daemon starts with", async () => {
    const result = await init([
      "--yes",
      "--contact",
      "Ada Lovelace:admin:+44 20 7946 0018,ada@example.com",
      "--contact",
      "John Doe:favorite:(555) 123-4567",
      "--region",
      "us",
      "--no-service",
    ]);
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(await readFile(configFile, "utf8"))).toEqual({
      unknownSenders: "ignore",
      defaultRegion: "US",
    });
    expect(JSON.parse(await readFile(contactsFile, "utf8"))).toEqual({
      contacts: [
        { name: "Ada Lovelace", tier: "admin", handles: ["+44 20 7946 0018", "ada@example.com"] },
        { name: "John Doe", tier: "favorite", handles: ["(555) 123-4567"] },
      ],
      groups: [],
    });
    expect((await stat(contactsFile)).mode & 0o777).toBe(0o600);
    const { contacts } = await asTheDaemonReadsThem();
    expect(contacts.lookup(asChatId("+15551234567"))?.name).toBe("John Doe");
    expect(contacts.lookup(asChatId("+442079460018"))?.tier).toBe("admin");
    // Then the doctor's checks, credentials among them.
    expect(result.stdout).toContain("Checking the setup (dispatch doctor):");
    expect(result.stdout).toContain("✓ config.json is valid");
    expect(result.stdout).toContain("✓ contacts.json is valid: 2 contacts, 0 groups");
    expect(result.stdout).toContain("✓ Claude credentials come from ANTHROPIC_API_KEY.");
    expect(result.stdout).toContain("Next: `dispatch start`");
  });

  it("refuses contacts the daemon would refuse, listing every problem, and writes nothing", async () => {
    const result = await init([
      "--yes",
      "--contact",
      "Ada:boss:+442079460018",
      "--contact",
      "John:favorite:not a phone",
      "--contact",
      "no tier here",
    ]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('--contact "no tier here" is not "Name:tier:handle,handle"');
    const second = await init([
      "--yes",
      "--contact",
      "Ada:boss:+442079460018",
      "--contact",
      "John:favorite:5551234567",
    ]);
    expect(second.exitCode).toBe(1);
    expect(second.stderr).toContain('contacts[0].tier: unknown tier "boss"');
    expect(second.stderr).toContain("contacts[1].handles[0]");
    await expect(readFile(configFile)).rejects.toThrow();
    await expect(readFile(contactsFile)).rejects.toThrow();
  });

  it("keeps files that exist, unless --force", async () => {
    await mkdir(join(home, "dispatch"), { recursive: true });
    await writeFile(contactsFile, '{ "contacts": [] }\n');
    const kept = await init(["--yes", "--contact", "Ada:admin:+442079460018", "--no-service"]);
    expect(kept.exitCode).toBe(0);
    expect(kept.stdout).toContain(`Kept ${contactsFile}: it exists (--force overwrites it).`);
    expect(await readFile(contactsFile, "utf8")).toBe('{ "contacts": [] }\n');
    expect(JSON.parse(await readFile(configFile, "utf8"))).toEqual({ unknownSenders: "ignore" });

    const forced = await init([
      "--yes",
      "--force",
      "--contact",
      "Ada:admin:+442079460018",
      "--unknown-senders",
      "respond",
      "--no-service",
    ]);
    expect(forced.exitCode).toBe(0);
    expect(
      (JSON.parse(await readFile(contactsFile, "utf8")) as { contacts: unknown[] }).contacts,
    ).toHaveLength(1);
    expect(JSON.parse(await readFile(configFile, "utf8"))).toEqual({ unknownSenders: "respond" });
  });

  it("needs --yes without a terminal, and says how to call it", async () => {
    const result = await runDispatch(["init"], { home, port });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("dispatch init asks its questions on a terminal");
    expect(result.stderr).toContain("--yes");
  });

  it("--service installs the service at the end", async () => {
    const commands: string[] = [];
    const runner: CommandRunner = (program, args) => {
      commands.push([program, ...args].join(" "));
      return Promise.resolve({ code: 0, stdout: "", stderr: "" });
    };
    await mkdir(join(home, "built"), { recursive: true });
    await writeFile(join(home, "built", "main.js"), "");
    const result = await runDispatch(
      ["init", "--yes", "--contact", "Ada:admin:+442079460018", "--service"],
      {
        home,
        port,
        runCommand: runner,
        mainScript: join(home, "built", "main.js"),
        env: { DISPATCH_API_TOKEN: "", ANTHROPIC_API_KEY: "sk-test" },
      },
    );
    expect(result.exitCode).toBe(0);
    expect(commands).toContain("systemctl --user enable dispatch.service");
    expect(result.stdout).toContain("dispatch now runs as a service");
  });
});

describe("dispatch init on a terminal", () => {
  it("asks for each contact, its tier and handles, re-asks what the daemon would refuse, and the region when a number needs one", async () => {
    const result = await init([], {
      stdinLines: [
        "Ada Lovelace", // name
        "", // tier: the first contact is suggested admin
        "+44 20 7946 0018, ada@example.com",
        "John Doe",
        "boss", // not a tier
        "favorite",
        "ada@example.com", // Ada's already
        "555 123 4567", // no country code
        "USA", // not a region
        "us",
        "", // no more contacts
        "y", // answer strangers
        "n", // no service
      ],
    });
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('"boss" is not a tier; pick one of admin, partner, family');
    expect(result.stdout).toContain('"Ada Lovelace" and "John Doe" both claim it');
    expect(result.stdout).toContain("Expected `defaultRegion`");
    expect(
      (JSON.parse(await readFile(contactsFile, "utf8")) as { contacts: unknown[] }).contacts,
    ).toEqual([
      { name: "Ada Lovelace", tier: "admin", handles: ["+44 20 7946 0018", "ada@example.com"] },
      { name: "John Doe", tier: "favorite", handles: ["555 123 4567"] },
    ]);
    const { config, contacts } = await asTheDaemonReadsThem();
    expect(config.unknownSenders).toBe("respond");
    expect(contacts.lookup(asChatId("+15551234567"))?.name).toBe("John Doe");
    expect(result.stdout).toContain("To run it as a service later: dispatch service install");
  });

  it("asks before overwriting a file, and keeps it on no", async () => {
    await mkdir(join(home, "dispatch"), { recursive: true });
    await writeFile(configFile, '{ "port": 7979 }\n');
    const result = await init([], {
      stdinLines: ["n", "", "n", "n"],
    });
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`${configFile} exists. Overwrite it? [y/N]`);
    expect(await readFile(configFile, "utf8")).toBe('{ "port": 7979 }\n');
    expect(JSON.parse(await readFile(contactsFile, "utf8"))).toEqual({
      contacts: [],
      groups: [],
    });
  });

  it("writes nothing when the input ends before the last answer", async () => {
    const result = await init([], { stdinLines: ["Ada", "admin"] });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("The input ended before every question was answered");
    await expect(readFile(contactsFile)).rejects.toThrow();
  });
});
