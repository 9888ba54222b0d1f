/** `dispatch service install|uninstall|status`: dispatch as a systemd user service or launchd agent. */
import { fileExists } from "../../utils/file-exists.js";
import path from "node:path";
import type { Command } from "commander";
import { resolvePaths } from "../../config/load-config.js";
import { STATIC_DEFAULTS } from "../../config/schema.js";
import { DispatchError } from "../../utils/errors.js";
import { hasClaudeCredentials } from "../../daemon/credentials.js";
import { CommandFailed, type CliContext } from "../context.js";
import { serviceEnvironment, serviceKindFor, type ServiceSpec } from "../service/service-files.js";
import {
  installService,
  loadCommands,
  renderService,
  serviceFile,
  serviceStatus,
  uninstallService,
  type ServiceContext,
} from "../service/service-manager.js";

/** Added to `shutdownGraceSeconds` before the service manager kills a stopping daemon. */
const STOP_MARGIN_SECONDS = 15;

export function registerServiceCommand(program: Command, context: CliContext): void {
  const service = program
    .command("service")
    .description("run dispatch as a service: a systemd user unit (Linux) or launchd agent (macOS)");

  service
    .command("install")
    .description("write the service definition, start dispatch now and at every login")
    .option("--demo", "run the offline stand-in model (dispatch start --demo)")
    .option("--print", "print the definition and the commands, change nothing")
    .action(async (options: { demo?: boolean; print?: boolean }) => {
      await installCommand(context, options.demo === true, options.print === true);
    });

  service
    .command("uninstall")
    .description("stop the service and remove its definition")
    .action(async () => {
      const report = await uninstallService(serviceContextOf(context));
      context.print(
        report.removed
          ? `Stopped the service and removed ${report.file}. Your dispatch home is untouched.`
          : `No dispatch service is installed (there is no ${report.file}).`,
      );
    });

  service
    .command("status")
    .description("whether the service is installed, enabled and running")
    .action(async () => {
      const status = await serviceStatus(serviceContextOf(context));
      const width = 9;
      const row = (label: string, value: string) =>
        context.print(`${label.padEnd(width)}  ${value}`);
      row("file", `${status.file}${status.installed ? "" : " (not installed)"}`);
      row("enabled", status.enabled ? "yes: starts when you log in" : "no");
      row(
        "running",
        status.running
          ? `yes (${status.state}${status.pid ? `, pid ${status.pid}` : ""})`
          : `no (${status.state})`,
      );
      if (!status.installed) {
        context.warn("Install it with `dispatch service install`.");
        throw new CommandFailed();
      }
      if (!status.running) {
        context.warn("The service is not running: `dispatch logs` shows why it stopped.");
        throw new CommandFailed();
      }
    });
}

function serviceContextOf(context: CliContext): ServiceContext {
  const { platform, homeDir, env, service } = context.deps;
  const kind = serviceKindFor(platform);
  if (kind === undefined) {
    throw new DispatchError(
      "service_unsupported",
      `dispatch can install itself as a service on Linux (systemd) and macOS (launchd), not on ` +
        `${platform}. Run \`dispatch start\` under a supervisor of your own instead ` +
        "(docs/running-as-a-service.md).",
    );
  }
  return { kind, homeDir, env, uid: service.uid, run: service.run };
}

export async function installCommand(context: CliContext, demo: boolean, printOnly: boolean) {
  const serviceContext = serviceContextOf(context);
  const { env, homeDir, platform, service } = context.deps;
  const paths = resolvePaths(env, homeDir);
  const grace = await context.config().then(
    ({ config }) => config.shutdownGraceSeconds,
    () => STATIC_DEFAULTS.shutdownGraceSeconds,
  );
  const spec: ServiceSpec = {
    nodePath: service.nodePath,
    mainScript: service.mainScript,
    demo,
    environment: serviceEnvironment(env),
    homeDir,
    logDir: path.dirname(paths.logFile),
    stopTimeoutSeconds: grace + STOP_MARGIN_SECONDS,
  };
  if (printOnly) {
    context.print(`# ${serviceFile(serviceContext)}`);
    context.deps.stdout(renderService(serviceContext.kind, spec));
    for (const [program, args] of loadCommands(serviceContext)) {
      context.print(`# then: ${[program, ...args].join(" ")}`);
    }
    return;
  }
  if (!(await fileExists(spec.mainScript))) {
    throw new DispatchError(
      "service_not_built",
      `${spec.mainScript} does not exist: the service runs the built dispatch. Run \`npm run ` +
        "build` in the repository (or `npm install -g .`), then install the service again.",
    );
  }
  const report = await installService(serviceContext, spec);
  context.print(
    `Wrote ${report.file}` +
      (report.secrets.length > 0 ? ` (mode 0600: it holds ${report.secrets.join(", ")}).` : "."),
  );
  context.print(`Ran: ${report.commands.join("; ")}`);
  context.print(
    `dispatch now runs as a service${demo ? " in demo mode" : ""} and starts when you log in. ` +
      "`dispatch service status` shows it, `dispatch logs -f` its log.",
  );
  if (serviceContext.kind === "systemd") {
    context.print("To keep it running after you log out: loginctl enable-linger $USER");
  }
  if (!demo && !hasClaudeCredentials(env, homeDir, platform)) {
    context.warn(
      "warning: no Claude credentials in this environment, so the service has none and will " +
        "refuse messages with no_credentials. Set ANTHROPIC_API_KEY (or run `claude login`), then " +
        "run `dispatch service install` again.",
    );
  }
}
