/**
 * `dispatch init`: a first setup. Asks who is answered (or takes `--contact` flags with `--yes`),
 * writes `config.json` and `contacts.json` (validated as the daemon's loaders validate, never
 * overwriting a file without asking or `--force`), checks Claude credentials, runs the doctor's
 * checks, and offers to install the service.
 */
import { mkdir } from "node:fs/promises";
import { fileExists } from "../../utils/file-exists.js";
import { Option, type Command } from "commander";
import writeFileAtomic from "write-file-atomic";
import { resolvePaths } from "../../config/load-config.js";
import { UNKNOWN_SENDER_POLICIES, type UnknownSenderPolicy } from "../../config/schema.js";
import { DispatchError, describeError } from "../../utils/errors.js";
import { DEFAULT_TIERS } from "../../utils/ids.js";
import { hasClaudeCredentials } from "../../daemon/credentials.js";
import { CommandFailed, createCliContext, type CliContext } from "../context.js";
import {
  buildSetupFiles,
  needsRegion,
  parseContactFlag,
  splitHandles,
  type ContactAnswer,
  type SetupAnswers,
} from "../init/setup-files.js";
import { createPrompter, type Prompter } from "../prompter.js";
import { renderCheck, runChecks } from "./doctor.js";
import { installCommand } from "./service.js";

interface InitOptions {
  yes?: boolean;
  force?: boolean;
  contact: string[];
  unknownSenders?: UnknownSenderPolicy;
  region?: string;
  service?: boolean;
}

/** Tiers a person may pick; `unknown` is for senders not in the file. */
const PICKABLE_TIERS = DEFAULT_TIERS.filter((tier) => tier !== "unknown");
const TIER_HELP = [
  "Tiers: admin may use a shell, write files and browse the web (you, usually);",
  "partner, family and favorite may read files in their own folder; bots are not answered.",
];

export function registerInitCommand(program: Command, context: CliContext): void {
  program
    .command("init")
    .description("first setup: contacts and tiers, config, credentials check, doctor, service")
    .option("-y, --yes", "ask nothing: take the flags and defaults (for scripts)")
    .option("--force", "overwrite config.json and contacts.json without asking")
    .addOption(
      new Option(
        "--contact <Name:tier:handles>",
        'a contact (repeatable), e.g. "Jane:family:+15551234567,jane@example.com"',
      )
        .argParser((value: string, previous: string[]) => [...previous, value])
        .default([]),
    )
    .addOption(
      new Option("--unknown-senders <policy>", "answer people not in contacts.json").choices(
        UNKNOWN_SENDER_POLICIES,
      ),
    )
    .option("--region <code>", "country of numbers written without +code, e.g. US")
    .option("--service", "install the service at the end (dispatch service install)")
    .option("--no-service", "do not offer to install the service")
    .action(async (options: InitOptions) => {
      await runInit(context, options);
    });
}

async function runInit(context: CliContext, options: InitOptions): Promise<void> {
  const { deps } = context;
  const interactive = options.yes !== true;
  if (interactive && !deps.stdinIsTTY) {
    throw new DispatchError(
      "init_needs_terminal",
      "dispatch init asks its questions on a terminal, and there is none. From a script, pass " +
        '--yes with the answers: dispatch init --yes --contact "Jane Roe:family:+15551234567".',
    );
  }
  const paths = resolvePaths(deps.env, deps.homeDir);
  const prompter = interactive
    ? createPrompter(deps.stdin, deps.stdoutStream, deps.stdinIsTTY)
    : undefined;
  try {
    context.print(`Setting up dispatch in ${paths.home}.`);
    const writeConfig = await mayWrite(context, prompter, paths.configFile, options.force);
    const writeContacts = await mayWrite(context, prompter, paths.contactsFile, options.force);
    if (writeConfig || writeContacts) {
      const answers = prompter
        ? await askAnswers(context, prompter, options)
        : answersFromFlags(options);
      const files = buildSetupFiles(answers, deps);
      await mkdir(paths.home, { recursive: true, mode: 0o700 });
      if (writeConfig) {
        await writeFileAtomic(paths.configFile, files.configText, { mode: 0o644 });
        context.print(`Wrote ${paths.configFile}.`);
      }
      if (writeContacts) {
        // Phone numbers and addresses: for the user's eyes only.
        await writeFileAtomic(paths.contactsFile, files.contactsText, { mode: 0o600 });
        context.print(
          `Wrote ${paths.contactsFile} (${answers.contacts.length} ` +
            `${answers.contacts.length === 1 ? "contact" : "contacts"}). Edit it any time; a ` +
            "running daemon applies the change.",
        );
      }
    }
    context.print();
    context.print("Checking the setup (dispatch doctor):");
    // A fresh context: the one above may have read config.json before it was written.
    const results = await runChecks(createCliContext(deps));
    for (const result of results) context.print(renderCheck(result));
    if (!(await fileExists(paths.apiTokenFile)) && !deps.env["DISPATCH_API_TOKEN"]) {
      context.print(
        "(Until dispatch has started once, the daemon and API token checks fail: that is expected.)",
      );
    }
    context.print();
    if (!hasClaudeCredentials(deps.env, deps.homeDir, deps.platform)) {
      context.print(
        "No Claude credentials yet: set ANTHROPIC_API_KEY (or run `claude login`) before " +
          "`dispatch start`, or try everything now with `dispatch start --demo`.",
      );
    }
    await offerService(context, prompter, options);
    context.print(
      "Next: `dispatch start` (or `npm start` in the clone), then " +
        '`dispatch send +15551234567 "hello"` or the dashboard the start banner names.',
    );
  } finally {
    prompter?.close();
  }
}

/** Whether a file may be written: it does not exist, `--force`, or the user says yes. */
async function mayWrite(
  context: CliContext,
  prompter: Prompter | undefined,
  file: string,
  force: boolean | undefined,
): Promise<boolean> {
  if (!(await fileExists(file)) || force) return true;
  if (!prompter) {
    context.print(`Kept ${file}: it exists (--force overwrites it).`);
    return false;
  }
  const answer = await prompter.ask(`${file} exists. Overwrite it? [y/N] `);
  const overwrite = /^y(es)?$/i.test(answer);
  if (!overwrite) context.print(`Kept ${file}.`);
  return overwrite;
}

function answersFromFlags(options: InitOptions): SetupAnswers {
  return {
    contacts: options.contact.map(parseContactFlag),
    unknownSenders: options.unknownSenders ?? "ignore",
    ...(options.region ? { defaultRegion: options.region } : {}),
  };
}

async function askAnswers(
  context: CliContext,
  prompter: Prompter,
  options: InitOptions,
): Promise<SetupAnswers> {
  const answers = answersFromFlags(options);
  context.print();
  context.print("Who should dispatch answer? Add your contacts one at a time; an empty name ends.");
  for (const line of TIER_HELP) context.print(line);
  for (;;) {
    const name = await prompter.ask("Name: ");
    if (name === "") break;
    const tier = await askTier(
      context,
      prompter,
      answers.contacts.length === 0 ? "admin" : "favorite",
    );
    for (;;) {
      const handles = splitHandles(
        await prompter.ask("Phone numbers and emails, comma-separated: "),
      );
      const contact: ContactAnswer = { name, tier, handles };
      if (handles.some(needsRegion) && !answers.defaultRegion) {
        answers.defaultRegion = await askRegion(context, prompter);
      }
      // Checked with the ones before it, as the daemon will: a handle two contacts claim is caught.
      const problem = problemWith(
        { ...answers, contacts: [...answers.contacts, contact] },
        context,
      );
      if (problem === undefined) {
        answers.contacts.push(contact);
        break;
      }
      context.print(problem);
    }
  }
  if (options.unknownSenders === undefined) {
    const strangers = await prompter.ask("Answer people who are not in your contacts too? [y/N] ");
    answers.unknownSenders = /^y(es)?$/i.test(strangers) ? "respond" : "ignore";
  }
  return answers;
}

async function askTier(
  context: CliContext,
  prompter: Prompter,
  suggested: string,
): Promise<string> {
  for (;;) {
    const tier =
      (await prompter.ask(`Tier (${PICKABLE_TIERS.join(", ")}) [${suggested}]: `)) || suggested;
    if ((PICKABLE_TIERS as readonly string[]).includes(tier)) return tier;
    context.print(`"${tier}" is not a tier; pick one of ${PICKABLE_TIERS.join(", ")}.`);
  }
}

async function askRegion(context: CliContext, prompter: Prompter): Promise<string> {
  for (;;) {
    const region = (
      await prompter.ask("Which country are numbers without a +country code from? (e.g. US, GB): ")
    ).toUpperCase();
    const problem = problemWith(
      { contacts: [], unknownSenders: "ignore", defaultRegion: region },
      context,
    );
    if (problem === undefined) return region;
    context.print(problem);
  }
}

function problemWith(answers: SetupAnswers, context: CliContext): string | undefined {
  try {
    buildSetupFiles(answers, context.deps);
    return undefined;
  } catch (error) {
    return describeError(error);
  }
}

async function offerService(
  context: CliContext,
  prompter: Prompter | undefined,
  options: InitOptions,
): Promise<void> {
  if (options.service === false) return;
  let install = options.service === true;
  if (!install && prompter) {
    const answer = await prompter.ask(
      "Run dispatch as a service now, started at every login (dispatch service install)? [y/N] ",
    );
    install = /^y(es)?$/i.test(answer);
  }
  if (!install) {
    context.print("To run it as a service later: dispatch service install");
    return;
  }
  try {
    await installCommand(context, false, false);
  } catch (error) {
    // The files are written; a service that could not be installed is reported, not fatal.
    context.warn(`error: ${describeError(error)}`);
    throw new CommandFailed();
  }
}
