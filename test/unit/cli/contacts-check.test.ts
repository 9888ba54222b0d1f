import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runDispatch } from "./cli-harness.js";

let home: string;
let contactsFile: string;

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), "dispatch-cli-"));
  await mkdir(join(home, "dispatch"));
  contactsFile = join(home, "dispatch", "contacts.json");
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

async function check(env: NodeJS.ProcessEnv = {}) {
  // No DISPATCH_PORT: contacts check must not need the daemon.
  return runDispatch(["contacts", "check"], { home, env });
}

describe("dispatch contacts check", () => {
  it("prints each entry with its handles as typed and as chat ids", async () => {
    await writeFile(
      contactsFile,
      JSON.stringify({
        contacts: [
          {
            name: "John Doe",
            tier: "favorite",
            handles: ["+1 (555) 123-4567", "John@Example.com"],
          },
          { name: "Build Bot", tier: "bots", handles: ["bot@example.com"] },
        ],
        groups: [{ chat_id: "chat123456789", name: "Family Chat", tier: "family" }],
      }),
    );
    const result = await check();
    expect(result.stderr).toBe("");
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(
      [
        `${contactsFile} is valid: 2 contacts, 1 group.`,
        "",
        "John Doe (contact, tier favorite)",
        "  +1 (555) 123-4567  ->  +15551234567",
        "  John@Example.com   ->  john@example.com",
        "",
        "Build Bot (contact, tier bots, not answered)",
        "  bot@example.com  ->  bot@example.com",
        "",
        "Family Chat (group, tier family)",
        "  chat123456789  ->  chat123456789",
        "",
      ].join("\n"),
    );
  });

  it("uses config.json's defaultRegion for numbers without a country code", async () => {
    await writeFile(join(home, "dispatch", "config.json"), JSON.stringify({ defaultRegion: "GB" }));
    await writeFile(
      contactsFile,
      JSON.stringify({ contacts: [{ name: "Ann", tier: "family", handles: ["020 7946 0018"] }] }),
    );
    const result = await check();
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain("020 7946 0018  ->  +442079460018");
  });

  it("prints every problem in an invalid file and exits 1", async () => {
    await writeFile(
      contactsFile,
      JSON.stringify({
        contacts: [
          { name: "A", tier: "favourite", handles: ["+15551234567"] },
          { name: "B", tier: "family", handles: ["+1 555 123 4567"] },
        ],
      }),
    );
    const result = await check();
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/^error: Contacts file .*contacts\.json is invalid:/);
    expect(result.stderr).toContain('contacts[0].tier: unknown tier "favourite"');
    expect(result.stderr).toContain("contacts[1].handles[0]");
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  it("reports a file that is not JSON", async () => {
    await writeFile(contactsFile, '{ "contacts": [ }');
    const result = await check();
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("is not valid JSON");
  });

  it("says there is no contacts file, which is allowed", async () => {
    const result = await check();
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(`There is no contacts file at ${contactsFile}`);
  });

  it("follows DISPATCH_HOME", async () => {
    const elsewhere = join(home, "elsewhere");
    await mkdir(elsewhere);
    await writeFile(join(elsewhere, "contacts.json"), JSON.stringify({ contacts: [] }));
    const result = await check({ DISPATCH_HOME: elsewhere });
    expect(result.stdout).toBe(
      `${join(elsewhere, "contacts.json")} is valid: 0 contacts, 0 groups.\n`,
    );
  });
});
