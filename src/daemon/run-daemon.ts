import { startDaemon, type StartInfo } from "./daemon.js";

/**
 * `dispatch start`: runs the daemon in the foreground until SIGTERM or SIGINT, then shuts down
 * gracefully and exits 0. The signals are caught from the first moment, so one that arrives
 * while the daemon is still starting stops it as soon as it is up; a repeated signal does not
 * cut the shutdown short (the session ids are being saved).
 */
export async function runDaemon(options: {
  demo: boolean;
  /** Told where everything is once the daemon is up (the CLI prints the start banner). */
  onStarted?: (info: StartInfo) => void;
}): Promise<void> {
  let received: NodeJS.Signals | undefined;
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (signal) => {
      if (received) {
        process.stderr.write(`dispatch: ${signal} received again; still shutting down\n`);
        return;
      }
      received = signal;
      resolve(signal);
    };
  });
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    // A failed start throws: the CLI prints the message and exits 1.
    const running = await startDaemon({ env: process.env, demo: options.demo });
    options.onStarted?.(running.info);
    await running.stop(await signalled);
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
}
