import { describeError } from "../core/errors.js";
import { startDaemon } from "./daemon.js";

/**
 * `dispatch start`: runs the daemon in the foreground until SIGTERM or SIGINT, then shuts down
 * gracefully and exits 0.
 */
export async function runDaemon(options: { demo: boolean }): Promise<void> {
  // A failed start throws: the CLI prints the message and exits 1.
  const running = await startDaemon({ env: process.env, demo: options.demo });
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      running.stop(signal).then(resolve, (error: unknown) => {
        process.stderr.write(`dispatch: shutdown failed: ${describeError(error)}\n`);
        process.exitCode = 1;
        resolve();
      });
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}
