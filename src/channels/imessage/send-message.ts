/**
 * Sending one iMessage: the bundled AppleScript, the command that runs it, and what a failure
 * means. The recipient and the text always travel as separate argv entries, never through a
 * shell and never inside the script's source.
 */
import { spawn } from "node:child_process";
import { DispatchError, describeError } from "../../utils/errors.js";
import type { ChatRoute } from "./chat-db-row.js";

/**
 * The text of `send-message.applescript` beside this file (a test keeps them the same). It is
 * kept here because the TypeScript build copies no other files into `dist/`.
 */
export const SEND_MESSAGE_APPLESCRIPT = `-- Sends one iMessage. Usage: osascript send-message.applescript buddy|chat <recipient> <text>
-- buddy: the recipient is a handle (+15551234567, someone@example.com);
-- chat: the recipient is a chat's guid (iMessage;+;chat123456789).
-- The recipient and the text arrive as arguments and are never part of the script's source.
-- dispatch runs a copy of this script kept in send-message.ts; a test keeps the two the same.
on run argv
\tif (count of argv) is not 3 then error "expected 3 arguments: buddy|chat, the recipient, the text" number 2
\tset theKind to item 1 of argv
\tset theRecipient to item 2 of argv
\tset theText to item 3 of argv
\ttell application "Messages"
\t\tif theKind is "chat" then
\t\t\tsend theText to chat id theRecipient
\t\telse if theKind is "buddy" then
\t\t\tsend theText to buddy theRecipient of (1st account whose service type = iMessage)
\t\telse
\t\t\terror "the first argument must be buddy or chat, got " & theKind number 2
\t\tend if
\tend tell
end run
`;

/**
 * `osascript -e <line> ...`: the bundled script, one `-e` per line, to which dispatch appends
 * `buddy|chat`, the recipient and the text; osascript hands those to `on run argv`.
 */
export function defaultSendCommand(): string[] {
  const lines = SEND_MESSAGE_APPLESCRIPT.split("\n").filter(
    (line) => line.trim() !== "" && !line.trimStart().startsWith("--"),
  );
  return ["osascript", ...lines.flatMap((line) => ["-e", line])];
}

export interface CommandResult {
  /** `null` when the process was killed by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs argv without a shell. Rejects only when the program cannot be started. */
export type RunCommand = (
  argv: readonly string[],
  options: { timeoutMs: number },
) => Promise<CommandResult>;

const OUTPUT_LIMIT = 64 * 1024;

export const runCommand: RunCommand = (argv, { timeoutMs }) =>
  new Promise((resolve, reject) => {
    const [program, ...args] = argv;
    if (!program) {
      reject(new Error("the send command is empty"));
      return;
    }
    const child = spawn(program, args, { shell: false, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      if (stdout.length < OUTPUT_LIMIT) stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      if (stderr.length < OUTPUT_LIMIT) stderr += chunk;
    });
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (exitCode, signal) => {
      clearTimeout(timer);
      resolve({ exitCode, signal, stdout, stderr, timedOut });
    });
  });

/** argv for one message: the command, then `buddy|chat`, the recipient and the text. */
export function sendArgv(command: readonly string[], route: ChatRoute, text: string): string[] {
  // argv cannot carry NUL; nothing a person typed needs it.
  return [...command, route.kind, route.recipient, text.replaceAll("\0", "")];
}

/** The DispatchError for a send command that could not start. */
export function sendStartFailure(program: string, route: ChatRoute, error: unknown): DispatchError {
  return new DispatchError(
    "imessage_send_failed",
    `[imessage] Could not run \`${program}\` to send to ${route.recipient}: ` +
      `${describeError(error)}. Check \`channels.imessage.sendCommand\` (unset, dispatch runs ` +
      "osascript, which is part of macOS).",
    { cause: error },
  );
}

/** The DispatchError for a send command that ran and failed, with its stderr. */
export function sendFailure(
  program: string,
  route: ChatRoute,
  result: CommandResult,
): DispatchError {
  const output = result.stderr.trim() || result.stdout.trim();
  const how = result.timedOut
    ? "timed out"
    : result.exitCode === null
      ? `was killed (${result.signal ?? "signal"})`
      : `exited with ${result.exitCode}`;
  return new DispatchError(
    "imessage_send_failed",
    `[imessage] Sending to ${route.kind} ${route.recipient} failed: \`${program}\` ${how}` +
      `${output ? `: ${output}` : ""}. ${hintFor(output, result.timedOut)}`,
  );
}

function hintFor(output: string, timedOut: boolean): string {
  if (output.includes("-1743") || /not (allowed|authori[sz]ed)/i.test(output)) {
    return (
      "Allow the program running dispatch to control Messages: System Settings → Privacy & " +
      "Security → Automation, then turn on Messages under your terminal (or node)."
    );
  }
  if (output.includes("-1728") || output.includes("-1719")) {
    return (
      "Messages does not know that recipient: check the chat in Messages, and that this Mac is " +
      "signed in to iMessage (Messages → Settings → iMessage)."
    );
  }
  if (timedOut) {
    return "Messages did not answer in time; open Messages once and check it is signed in.";
  }
  return "Check that Messages is signed in to iMessage and can send to this recipient.";
}
