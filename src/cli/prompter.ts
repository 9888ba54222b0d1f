/**
 * Questions on stdin, one after another, for `dispatch init`. One readline interface for the
 * whole conversation (a new one per question would lose what the one before had read ahead), a
 * line editor on a terminal. Input that ends (Ctrl-D) rejects the question being asked.
 */
import { createInterface } from "node:readline";
import { DispatchError } from "../utils/errors.js";

export interface Prompter {
  /** The answer, trimmed. */
  ask(question: string): Promise<string>;
  close(): void;
}

export function createPrompter(
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
  terminal: boolean,
): Prompter {
  const lines = createInterface({ input, output, terminal, crlfDelay: Infinity });
  const answers = lines[Symbol.asyncIterator]();
  return {
    async ask(question) {
      lines.setPrompt(question);
      lines.prompt();
      const next = await answers.next();
      if (next.done === true) {
        output.write("\n");
        throw new DispatchError(
          "input_ended",
          "The input ended before every question was answered; nothing was written. Run " +
            "`dispatch init` again, or `dispatch init --yes --contact ...` from a script.",
        );
      }
      // Without a terminal the answer is not echoed: end the question's line.
      if (!terminal) output.write("\n");
      return String(next.value).trim();
    },
    close: () => lines.close(),
  };
}
