/**
 * Applies edits to `contacts.json` while the daemon runs. The file's folder is watched (editors
 * save by writing a new file and renaming it over the old one, which a watch on the file itself
 * would lose); a burst of events is settled for `settleMs`, then the whole file is read and
 * validated as at start. A valid book replaces the old one in one step; an invalid one is refused
 * with its problems logged, and the book before it stays in force: never half of an edit.
 */
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describeError } from "../utils/errors.js";
import type { ContactBook } from "../identity/contacts.js";
import type { Logger } from "../logging/logger.js";

export interface ContactsReloadDeps {
  /** `~/dispatch/contacts.json` */
  file: string;
  /** Reads and validates the file as the daemon's start does; a missing file is an empty book. */
  load: () => Promise<ContactBook>;
  /** Called with each valid new book. */
  apply: (book: ContactBook) => void;
  logger: Logger;
  /** How long the file must be quiet before it is read. Default 150 ms. */
  settleMs?: number;
}

export interface ContactsReload {
  /** Stops watching; resolves once a reload under way has finished. */
  close(): Promise<void>;
}

const DEFAULT_SETTLE_MS = 150;

export function watchContactsFile(deps: ContactsReloadDeps): ContactsReload {
  const { file, logger } = deps;
  const folder = path.dirname(file);
  const name = path.basename(file);
  const settleMs = deps.settleMs ?? DEFAULT_SETTLE_MS;
  let timer: NodeJS.Timeout | undefined;
  let reloading: Promise<void> = Promise.resolve();
  let closed = false;
  /**
   * The text last applied or refused (undefined: no file), so an event that leaves it as it was
   * is not logged again; null until the first reload, which always reads the file.
   */
  let lastText: string | undefined | null = null;

  const watcher: FSWatcher | undefined = startWatching();

  function startWatching(): FSWatcher | undefined {
    try {
      const folderWatcher = watch(folder, { persistent: false }, (_event, changed) => {
        // Some platforms do not name the file; then any change in the folder is checked.
        if (changed === null || changed.toString() === name) schedule();
      });
      folderWatcher.on("error", (error) =>
        logger.warn("contacts-watch-failed", { file, cause: describeError(error) }),
      );
      return folderWatcher;
    } catch (error) {
      logger.warn("contacts-watch-failed", {
        file,
        cause: describeError(error),
        fix: "restart dispatch to apply edits to contacts.json",
      });
      return undefined;
    }
  }

  function schedule(): void {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      reloading = reloading.then(reload);
    }, settleMs);
  }

  async function reload(): Promise<void> {
    if (closed) return;
    const text = await readFile(file, "utf8").catch(() => undefined);
    if (text === lastText) return;
    lastText = text;
    let book: ContactBook;
    try {
      book = await deps.load();
    } catch (error) {
      logger.warn("contacts-reload-refuse", {
        file,
        reason: describeError(error),
        kept: "the contacts from before this edit",
      });
      return;
    }
    if (closed) return;
    deps.apply(book);
    const contacts = book.entries().filter((entry) => entry.kind === "contact").length;
    logger.info("contacts-reload", {
      file,
      contacts,
      groups: book.size - contacts,
      ...(text === undefined ? { removed: true } : {}),
    });
  }

  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      watcher?.close();
      await reloading;
    },
  };
}
