#!/usr/bin/env node
/**
 * The `dispatch` command. `buildProgram(deps)` is the whole CLI with its outside world passed in,
 * so tests run it against a fake daemon; the bottom of this file runs it for real.
 */
import { readFileSync, realpathSync } from "node:fs";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, Option } from "commander";
import { DispatchError, describeError } from "../utils/errors.js";
import { registerContactsCommand } from "./commands/contacts.js";
import { registerDashboardCommand } from "./commands/dashboard.js";
import { registerDoctorCommand } from "./commands/doctor.js";
import { registerInitCommand } from "./commands/init.js";
import { registerLogsCommand } from "./commands/logs.js";
import { registerServiceCommand } from "./commands/service.js";
import { registerChatCommand, registerSendCommand } from "./commands/messages.js";
import {
  registerNodesCommand,
  registerSessionsCommand,
  registerStatusCommand,
} from "./commands/sessions.js";
import { runCommand } from "./service/service-manager.js";
import { openUrl } from "./open-url.js";
import { renderStartBanner } from "./start-banner.js";
import { CommandFailed, createCliContext, type CliDeps, type StartDaemon } from "./context.js";

export type { CliDeps, StartDaemon } from "./context.js";

/** Exit codes: 0 success, 1 a command failed, 2 the command line itself was wrong. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function buildProgram(deps: CliDeps): Command {
  const context = createCliContext(deps);
  const program = new Command("dispatch")
    .description("One persistent Claude agent session per chat, fed by messaging channels.")
    .version(deps.version, "-v, --version", "print dispatch's version")
    .helpOption("-h, --help", "show help for a command")
    .configureOutput({ writeOut: deps.stdout, writeErr: deps.stderr })
    .exitOverride()
    .showHelpAfterError("(add --help for usage)");
  // `-V` too, as earlier versions had it (and many tools do).
  program.addOption(new Option("-V").hideHelp());
  program.on("option:V", () => {
    deps.stdout(`${deps.version}\n`);
    throw new CommanderError(0, "commander.version", deps.version);
  });
  program
    .command("version")
    .description("print dispatch's version (as --version)")
    .action(() => deps.stdout(`${deps.version}\n`));

  program
    .command("start")
    .description("run the daemon in the foreground until Ctrl-C (what `npm start` runs)")
    .option("--demo", "answer with the offline stand-in model: no Claude credentials needed")
    .action(async (options: { demo?: boolean }) => {
      await deps.startDaemon({
        demo: options.demo === true,
        // On stderr: stdout carries the log's JSON lines when it is not a terminal.
        onStarted: (info) => deps.stderr(renderStartBanner(info)),
      });
    });
  registerInitCommand(program, context);
  registerStatusCommand(program, context);
  registerSendCommand(program, context);
  registerChatCommand(program, context);
  registerSessionsCommand(program, context);
  registerNodesCommand(program, context);
  registerContactsCommand(program, context);
  registerDoctorCommand(program, context);
  registerLogsCommand(program, context);
  registerDashboardCommand(program, context);
  registerServiceCommand(program, context);

  program.addHelpText(
    "after",
    [
      "",
      "Examples:",
      "  dispatch init                    first setup: contacts, config, checks, service",
      "  dispatch start --demo            run without Claude credentials",
      '  dispatch send +15551234567 "hi"  send a message and print the reply',
      "  dispatch status                  every session at a glance",
      "  dispatch doctor                  find out what is wrong",
      "  dispatch logs -f                 follow the daemon's log",
      "  dispatch dashboard               open the web dashboard, signed in",
    ].join("\n"),
  );
  return program;
}

/** Runs one command line (without `node` and the script) and resolves to the exit code. */
export async function runCli(args: readonly string[], deps: CliDeps): Promise<number> {
  try {
    await buildProgram(deps).parseAsync([...args], { from: "user" });
    return 0;
  } catch (error) {
    return reportFailure(error, deps);
  }
}

function reportFailure(error: unknown, deps: CliDeps): number {
  // Commander has printed its own message (or the help, or the version) already.
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT_USAGE;
  if (error instanceof CommandFailed) return EXIT_FAILURE;
  if (error instanceof DispatchError) {
    deps.stderr(`error: ${error.message}\n`);
    return EXIT_FAILURE;
  }
  // Not an error we expected: a bug, so keep the stack for the report.
  const detail = error instanceof Error && error.stack ? error.stack : describeError(error);
  deps.stderr(`error: ${describeError(error)}\n\n${detail}\n`);
  return EXIT_FAILURE;
}

/** The real process: its streams, environment and the daemon from `src/daemon/`. */
export function createProcessDeps(): CliDeps {
  const startDaemon: StartDaemon = async (options) => {
    const { runDaemon } = await import("../daemon/run-daemon.js");
    await runDaemon(options);
  };
  return {
    env: process.env,
    homeDir: os.homedir(),
    platform: process.platform,
    nodeVersion: process.versions.node,
    version: readOwnVersion(),
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stdoutStream: process.stdout,
    stdin: process.stdin,
    stdinIsTTY: process.stdin.isTTY === true,
    stdoutIsTTY: process.stdout.isTTY === true,
    now: () => new Date(),
    startDaemon,
    openUrl: (url) => openUrl(url, { platform: process.platform, env: process.env }),
    service: {
      run: runCommand,
      uid: process.getuid?.() ?? 0,
      nodePath: process.execPath,
      // From `src/cli/` or `dist/cli/` alike: the built entry point, two folders up then down.
      mainScript: fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url)),
    },
    waitForInterrupt: () =>
      new Promise((resolve) => {
        const done = (): void => {
          process.off("SIGINT", done);
          process.off("SIGTERM", done);
          resolve();
        };
        process.once("SIGINT", done);
        process.once("SIGTERM", done);
      }),
  };
}

/** From package.json, two folders up from both `src/cli/` and `dist/cli/`. */
function readOwnVersion(): string {
  try {
    const manifest = JSON.parse(
      readFileSync(new URL("../../package.json", import.meta.url), "utf8"),
    ) as { version?: unknown };
    return typeof manifest.version === "string" ? manifest.version : "unknown";
  } catch {
    return "unknown";
  }
}

/** True when this file is the program being run (also through npm's bin symlink). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  process.exitCode = await runCli(process.argv.slice(2), createProcessDeps());
}
