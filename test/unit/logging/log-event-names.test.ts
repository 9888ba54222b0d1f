import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * STYLE asks for log events named noun-verb in kebab-case (`daemon-start`, `reply-send-failed`):
 * one form that a reader can grep and `dispatch logs` can filter. Half of them were prose once
 * (`daemon start failed` beside `daemon-start`, issue 13); this keeps new prose names out.
 */
const EVENT_NAME = /^[a-z]+(-[a-z0-9]+)*$/;

/** A logger call with a literal message: `logger.warn("...")`, `deps.logger?.info(`...`)`, `log.debug('...')`. */
const LOGGER_CALL =
  /\b(?:logger|log)\??\.(?:debug|info|warn|error)\(\s*(["'`])((?:(?!\1)[^\\]|\\.)*)\1/g;

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../src");

function logEventNames(source: string): string[] {
  return [...source.matchAll(LOGGER_CALL)].map((match) => match[2]!);
}

async function sourceFiles(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { withFileTypes: true, recursive: true });
  return entries
    .filter((entry) => entry.isFile() && /\.(ts|js)$/.test(entry.name))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

describe("log event names", () => {
  it("are found in logger calls of every form, and prose is told from kebab-case", () => {
    const names = logEventNames(
      [
        'log.warn("daemon start failed", { cause });',
        "deps.logger?.info(\n  `contacts-reload`,\n  { count },\n);",
        "this.deps.logger.error('reply record failed')",
        'context.warn("Install it with `dispatch service install`.")',
      ].join("\n"),
    );
    expect(names).toEqual(["daemon start failed", "contacts-reload", "reply record failed"]);
    expect(names.filter((name) => !EVENT_NAME.test(name))).toEqual([
      "daemon start failed",
      "reply record failed",
    ]);
  });

  it("are noun-verb kebab-case in every logger call of src/", async () => {
    const prose: string[] = [];
    let calls = 0;
    for (const file of await sourceFiles(SRC)) {
      for (const name of logEventNames(await readFile(file, "utf8"))) {
        calls += 1;
        if (!EVENT_NAME.test(name)) {
          prose.push(`${path.relative(SRC, file)}: "${name}"`);
        }
      }
    }
    expect(calls).toBeGreaterThan(100);
    expect(prose).toEqual([]);
  });
});
