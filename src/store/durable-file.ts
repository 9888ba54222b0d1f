/**
 * Durable file replacement: after `writeFileDurable` resolves, the new content survives a crash
 * or power loss, and a reader never sees a half-written file. write-file-atomic writes a temp
 * file beside the target, fsyncs it and renames it over the target; it does not fsync the
 * folder, so the rename itself could be lost. We do that here.
 */
import { constants } from "node:fs";
import { copyFile, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import writeFileAtomic from "write-file-atomic";

export interface DurableWriteOptions {
  /** File mode; default 0600. */
  mode?: number;
}

/** Replaces `path` with `data` (a string is written as UTF-8; a Buffer as it is, not copied). */
export async function writeFileDurable(
  path: string,
  data: string | Buffer,
  options: DurableWriteOptions = {},
): Promise<void> {
  await writeFileAtomic(path, data, { fsync: true, mode: options.mode ?? 0o600 });
  await fsyncFolder(dirname(path));
}

/** Makes renames and unlinks in `folder` durable. */
export async function fsyncFolder(folder: string): Promise<void> {
  const handle = await open(folder, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Copies `from` to a new file `to` (never over an existing one) and makes the copy durable. */
export async function copyFileDurable(from: string, to: string): Promise<void> {
  await copyFile(from, to, constants.COPYFILE_EXCL);
  const handle = await open(to, "r+");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fsyncFolder(dirname(to));
}

let copies = 0;

/**
 * Replaces `to` with a copy of `from`, atomically and durably, like `writeFileDurable` but with
 * the kernel doing the copy: a large file's bytes never pass through this process's memory. The
 * temp file is named as write-file-atomic names its own, so `removeStaleTempFiles` finds what a
 * killed copy left.
 */
export async function replaceWithCopyDurable(
  from: string,
  to: string,
  options: DurableWriteOptions = {},
): Promise<void> {
  copies += 1;
  const temp = `${to}.${process.pid}${copies}`;
  try {
    await copyFile(from, temp, constants.COPYFILE_EXCL);
    const handle = await open(temp, "r+");
    try {
      await handle.chmod(options.mode ?? 0o600);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, to);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await fsyncFolder(dirname(to));
}

/** The file's text, or undefined when it does not exist. Other errors are thrown. */
export async function readFileIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if (errorCode(error) === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Whether `name` is a temp file write-file-atomic makes for `target`: `<target>.<decimal>`.
 * Kept in one place because it depends on that library's naming.
 */
export function isTempFileOf(target: string, name: string): boolean {
  const prefix = `${basename(target)}.`;
  return name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length));
}

/**
 * Deletes temp files a killed writer left beside `target` (only names `isTempFileOf` matches;
 * call it before any writer in this process starts). Returns the paths removed.
 */
export async function removeStaleTempFiles(target: string): Promise<string[]> {
  const folder = dirname(target);
  const removed: string[] = [];
  for (const name of await readdir(folder)) {
    if (!isTempFileOf(target, name)) continue;
    const path = join(folder, name);
    try {
      await unlink(path);
      removed.push(path);
    } catch (error) {
      if (errorCode(error) !== "ENOENT") throw error;
    }
  }
  if (removed.length > 0) await fsyncFolder(folder);
  return removed;
}

export function errorCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null || !("code" in error)) return undefined;
  return typeof error.code === "string" ? error.code : undefined;
}
