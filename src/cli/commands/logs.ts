/** `dispatch logs [--follow]`: the daemon's log file, readable, and followed as it grows. */
import { stat } from "node:fs/promises";
import { Option, type Command } from "commander";
import { prettyFactory } from "pino-pretty";
import { resolvePaths } from "../../config/load-config.js";
import { CommandFailed, type CliContext } from "../context.js";
import { followLog, readLastLines } from "../log-reader.js";

interface LogsOptions {
  follow?: boolean;
  lines: string;
  json?: boolean;
}

export function registerLogsCommand(program: Command, context: CliContext): void {
  program
    .command("logs")
    .description("show the daemon's log (state/logs/dispatch.log); --follow keeps printing")
    .option("-f, --follow", "keep printing new lines until Ctrl-C, across rotations")
    .addOption(
      new Option("-n, --lines <count>", "how many of the last lines to show").default("50"),
    )
    .option("--json", "print the JSON lines as written, not formatted")
    .action(async (options: LogsOptions) => {
      const count = Number(options.lines);
      if (!Number.isInteger(count) || count < 0) {
        context.warn(
          `error: --lines must be a whole number of 0 or more, got ${JSON.stringify(options.lines)}.`,
        );
        throw new CommandFailed();
      }
      const { env, homeDir } = context.deps;
      const file = resolvePaths(env, homeDir).logFile;
      const size = await stat(file).then(
        (found) => found.size,
        () => undefined,
      );
      if (size === undefined && !options.follow) {
        context.warn(
          `error: There is no log at ${file} yet. dispatch writes it once it has started ` +
            "(`dispatch start`); with another DISPATCH_HOME, set DISPATCH_HOME to the same folder.",
        );
        throw new CommandFailed();
      }
      const format = lineFormatter(options.json === true, context.deps.stdoutIsTTY);
      const print = (lines: string[]) => {
        for (const line of lines) if (line !== "") context.deps.stdout(format(line));
      };
      print(await readLastLines(file, count));
      if (!options.follow) return;
      if (size === undefined) context.warn(`Waiting for ${file} (Ctrl-C stops).`);
      await followLog(file, {
        fromOffset: size ?? 0,
        onLines: print,
        stopped: context.deps.waitForInterrupt(),
      });
    });
}

/** JSON as written, or one readable line per record (colours on a terminal). */
export function lineFormatter(json: boolean, colorize: boolean): (line: string) => string {
  if (json) return (line) => `${line}\n`;
  const pretty = prettyFactory({
    colorize,
    translateTime: "SYS:yyyy-mm-dd HH:MM:ss.l",
    ignore: "pid,hostname",
    singleLine: true,
  });
  return (line) => pretty(line);
}
