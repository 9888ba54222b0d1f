/**
 * What `dispatch init` writes: `config.json` with the choices made, and `contacts.json` with the
 * first contacts, each checked exactly as the daemon's loaders check them, so a file init wrote
 * is one the daemon starts with. Pure: answers in, file texts or problems out.
 */
import os from "node:os";
import { validateConfig } from "../../config/load-config.js";
import type { Config, UnknownSenderPolicy } from "../../config/schema.js";
import { DispatchError } from "../../utils/errors.js";
import { parseContacts } from "../../identity/contacts.js";

export interface ContactAnswer {
  name: string;
  tier: string;
  handles: string[];
}

export interface SetupAnswers {
  contacts: ContactAnswer[];
  unknownSenders: UnknownSenderPolicy;
  /** Two letters, for numbers written without a country code. */
  defaultRegion?: string;
}

export interface SetupFiles {
  configText: string;
  contactsText: string;
  config: Config;
}

/** Builds both files and validates them as `loadConfig` and `loadContacts` would. */
export function buildSetupFiles(
  answers: SetupAnswers,
  context: { homeDir: string; platform: NodeJS.Platform },
): SetupFiles {
  const configJson: Record<string, unknown> = { unknownSenders: answers.unknownSenders };
  if (answers.defaultRegion) configJson["defaultRegion"] = answers.defaultRegion.toUpperCase();
  const validated = validateConfig(configJson, {
    ...context,
    totalMemoryBytes: os.totalmem(),
    sourceName: "config.json",
  });
  if (!validated.ok) {
    throw new DispatchError(
      "init_invalid",
      `These settings would make an invalid config.json:\n${validated.problems
        .map((problem) => `  - ${problem}`)
        .join("\n")}`,
    );
  }
  const contactsJson = {
    contacts: answers.contacts.map((contact) => ({
      name: contact.name,
      tier: contact.tier,
      handles: contact.handles,
    })),
    groups: [],
  };
  checkContacts(contactsJson, validated.config);
  return {
    configText: `${JSON.stringify(configJson, null, 2)}\n`,
    contactsText: `${JSON.stringify(contactsJson, null, 2)}\n`,
    config: validated.config,
  };
}

/** Throws `contacts_invalid` listing every problem, as the daemon would at start. */
export function checkContacts(contactsJson: unknown, config: Config): void {
  parseContacts(contactsJson, {
    knownTiers: Object.keys(config.tiers),
    ...(config.defaultRegion ? { defaultRegion: config.defaultRegion } : {}),
    source: "These contacts",
  });
}

/**
 * `--contact "Jane Roe:family:+15551234567,jane@example.com"`: name, tier and handles, split at
 * the last two colons (a name may hold one; a tier or handle never does).
 */
export function parseContactFlag(value: string): ContactAnswer {
  const lastColon = value.lastIndexOf(":");
  const tierColon = lastColon <= 0 ? -1 : value.lastIndexOf(":", lastColon - 1);
  if (tierColon <= 0) {
    throw new DispatchError(
      "bad_contact_flag",
      `--contact ${JSON.stringify(value)} is not "Name:tier:handle,handle". Example: ` +
        '--contact "Jane Roe:family:+15551234567,jane@example.com"',
    );
  }
  return {
    name: value.slice(0, tierColon).trim(),
    tier: value.slice(tierColon + 1, lastColon).trim(),
    handles: splitHandles(value.slice(lastColon + 1)),
  };
}

export function splitHandles(text: string): string[] {
  return text
    .split(",")
    .map((handle) => handle.trim())
    .filter((handle) => handle !== "");
}

/** Whether a handle is a phone number written without its country code. */
export function needsRegion(handle: string): boolean {
  return !handle.includes("@") && !handle.trim().startsWith("+") && /\d/.test(handle);
}
