/** `dispatch contacts check`: reads contacts.json as the daemon would and shows what it means. */
import { fileExists } from "../../utils/file-exists.js";
import type { Command } from "commander";
import type { Config } from "../../config/schema.js";
import { loadContacts, type ContactBookEntry } from "../../identity/contacts.js";
import type { CliContext } from "../context.js";
import { formatTable } from "../format-table.js";
import { plural } from "../plural.js";

export function registerContactsCommand(program: Command, context: CliContext): void {
  const contacts = program.command("contacts").description("check the contacts book");
  contacts
    .command("check")
    .description("validate contacts.json and show each handle's chat id and tier")
    .action(async () => {
      const { config, paths } = await context.config();
      const file = paths.contactsFile;
      if (!(await fileExists(file))) {
        context.print(
          `There is no contacts file at ${file}: every sender is in the \`unknown\` tier. ` +
            "`dispatch init` writes one; docs/configuration.md#contactsjson describes it.",
        );
        return;
      }
      const book = await loadContacts(file, {
        knownTiers: Object.keys(config.tiers),
        defaultRegion: config.defaultRegion,
      });
      context.deps.stdout(renderContactBook(file, book.entries(), config));
    });
}

const HANDLE_COLUMNS = [{ header: "handle" }, { header: "" }, { header: "chat id" }];

/** A summary line, then each entry with its handles as typed and as chat ids. */
export function renderContactBook(
  file: string,
  entries: readonly ContactBookEntry[],
  config: Pick<Config, "tiers">,
): string {
  const contactCount = entries.filter((entry) => entry.kind === "contact").length;
  const groupCount = entries.length - contactCount;
  const lines = [
    `${file} is valid: ${plural(contactCount, "contact")}, ${plural(groupCount, "group")}.`,
  ];
  for (const entry of entries) {
    const answered = config.tiers[entry.tier]?.respond === false ? ", not answered" : "";
    lines.push("", `${entry.name} (${entry.kind}, tier ${entry.tier}${answered})`);
    const rows = entry.handles.map((handle) => [`  ${handle.raw}`, "->", handle.chatId]);
    if (rows.length > 0) lines.push(formatTable(HANDLE_COLUMNS, rows, { header: false }).trimEnd());
  }
  return `${lines.join("\n")}\n`;
}
