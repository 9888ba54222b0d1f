/**
 * `dispatch dashboard [--print]`: opens the dashboard signed in. The CLI, which can read the API
 * token, asks the daemon for a one-time code that lives a minute; the link carries it in its
 * fragment (`/#code=...`), which browsers never send to a server, and the page trades it once
 * for the token and removes it from the address. The token itself never goes in a link.
 */
import type { Command } from "commander";
import { API_HOST } from "../api-client.js";
import type { CliContext } from "../context.js";

interface DashboardOptions {
  print?: boolean;
}

export function registerDashboardCommand(program: Command, context: CliContext): void {
  program
    .command("dashboard")
    .description("open the web dashboard, signed in (a link that works once, for a minute)")
    .option("--print", "print the link instead of opening a browser")
    .action(async (options: DashboardOptions) => {
      const api = await context.api();
      const { code, expires_in_seconds: seconds } = await api.createSignInCode();
      const link = `http://${API_HOST}:${api.port}/#code=${code}`;
      const lifetime = `It signs one browser in, once, within ${seconds} seconds.`;
      if (options.print !== true && (await context.deps.openUrl(link))) {
        context.warn(
          `Opened the dashboard in your browser. If it did not open, run \`dispatch dashboard --print\`.`,
        );
        return;
      }
      if (options.print !== true) context.warn("No browser to open here: open this link yourself.");
      context.print(link);
      context.warn(lifetime);
    });
}
