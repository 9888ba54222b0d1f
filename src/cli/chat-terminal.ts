/**
 * `dispatch chat` on a terminal: a line editor as in any REPL (node:readline with a terminal:
 * arrow keys, history with Up and Down, Ctrl-A and Ctrl-E, Ctrl-U...). A line is sent the moment
 * it is entered, even while the agent is still working on the one before: the daemon steers it
 * into the running turn. Each reply is printed when it comes, above the line being typed, and
 * the prompt says while the agent works. Ctrl-D leaves once every reply is in; Ctrl-C leaves at
 * once (the daemon still answers what was sent).
 */
import { clearLine, createInterface, cursorTo } from "node:readline";
import type { SubmitResult } from "../channels/http/control-plane.js";
import { DispatchError } from "../utils/errors.js";

export const IDLE_PROMPT = "you> ";
export const WORKING_PROMPT = "you (working...)> ";

export interface TerminalChatDeps {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  /** Sends one line and waits for the turn that answers it. */
  send: (text: string, signal: AbortSignal) => Promise<SubmitResult>;
  /** `name> reply`, later lines indented. */
  formatReply: (result: SubmitResult) => string;
  /** Errors after which no line can succeed (the daemon is gone, the token is wrong). */
  isFatal: (error: DispatchError) => boolean;
}

/** Resolves when the user leaves; rejects with the first fatal error. */
export function runTerminalChat(deps: TerminalChatDeps): Promise<void> {
  const { output } = deps;
  const lines = createInterface({
    input: deps.input,
    output,
    terminal: true,
    prompt: IDLE_PROMPT,
    historySize: 500,
    removeHistoryDuplicates: true,
  });
  const abort = new AbortController();
  let nextRequest = 0;
  const inFlight = new Set<number>();
  /** The last reply shown, and which requests were still waiting then. */
  let lastShown: { reply: string | null | undefined; waiting: Set<number> } | undefined;
  let leaving = false;
  let fatal: Error | undefined;

  return new Promise<void>((resolve, reject) => {
    const finish = () => (fatal === undefined ? resolve() : reject(fatal));

    /** Prints above the line being typed, then draws the prompt and that line again. */
    const printAbove = (text: string) => {
      clearLine(output, 0);
      cursorTo(output, 0);
      output.write(`${text}\n`);
      if (!leaving) lines.prompt(true);
    };

    const showState = () => {
      lines.setPrompt(inFlight.size > 0 ? WORKING_PROMPT : IDLE_PROMPT);
      if (leaving) return;
      clearLine(output, 0);
      cursorTo(output, 0);
      lines.prompt(true);
    };

    const done = (request: number) => {
      if (!inFlight.delete(request)) return;
      showState();
      if (leaving && inFlight.size === 0) finish();
    };

    const sendLine = (text: string) => {
      const request = nextRequest++;
      inFlight.add(request);
      showState();
      deps.send(text, abort.signal).then(
        (result) => {
          if (!inFlight.has(request)) return;
          // A steered message is answered by the turn that answers the one before it: both
          // requests get that turn's reply, which is shown once.
          const repeat =
            lastShown?.waiting.has(request) === true && lastShown.reply === result.reply;
          if (!repeat) {
            printAbove(deps.formatReply(result));
            lastShown = {
              reply: result.reply,
              waiting: new Set([...inFlight].filter((other) => other !== request)),
            };
          }
          done(request);
        },
        (error: unknown) => {
          if (!inFlight.has(request)) return;
          if (error instanceof DispatchError && !deps.isFatal(error)) {
            printAbove(`error: ${error.message}`);
          } else {
            fatal ??= error instanceof Error ? error : new Error(String(error));
            lines.close();
          }
          done(request);
        },
      );
    };

    lines.on("line", (line) => {
      const text = line.trim();
      if (text !== "") sendLine(text);
      else lines.prompt();
    });
    // Ctrl-C: a half-typed line is dropped, as in a shell; on an empty line it leaves at once.
    lines.on("SIGINT", () => {
      if (lines.line !== "") {
        output.write("^C\n");
        lines.write(null, { ctrl: true, name: "e" });
        lines.write(null, { ctrl: true, name: "u" });
        lines.prompt();
        return;
      }
      inFlight.clear();
      abort.abort();
      lines.close();
    });
    lines.on("close", () => {
      leaving = true;
      output.write("\n");
      if (inFlight.size === 0) finish();
    });
    lines.prompt();
  });
}
