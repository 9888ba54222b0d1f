/**
 * The page's files (`client/`: HTML, CSS and plain JavaScript modules, no build step), read
 * once into memory and served from there. The folder is found relative to this module: beside
 * it when running from `src/` (tsx), or back in `src/dashboard/client` when running the
 * compiled `dist/dashboard/`, since `tsc` does not copy these files.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DispatchError } from "../utils/errors.js";

export interface ClientAsset {
  body: Uint8Array<ArrayBuffer>;
  contentType: string;
  etag: string;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".svg": "image/svg+xml",
};

/** The client folder for a module at `moduleUrl` (this one by default); undefined if none. */
export function findClientFolder(moduleUrl: string = import.meta.url): string | undefined {
  const here = path.dirname(fileURLToPath(moduleUrl));
  const candidates = [
    path.join(here, "client"),
    path.resolve(here, "..", "..", "src", "dashboard", "client"),
  ];
  return candidates.find((folder) => existsSync(path.join(folder, "index.html")));
}

/** Every servable file of the folder (no sub-folders), keyed by file name. */
export async function loadClientAssets(folder: string): Promise<Map<string, ClientAsset>> {
  const assets = new Map<string, ClientAsset>();
  let names: string[];
  try {
    names = await readdir(folder);
  } catch (error) {
    throw new DispatchError(
      "dashboard_assets_missing",
      `The dashboard's files are not in ${folder}: reinstall dispatch (the folder src/dashboard/client must be there).`,
      { cause: error },
    );
  }
  for (const name of names.sort()) {
    const contentType = CONTENT_TYPES[path.extname(name)];
    if (contentType === undefined) continue;
    const body = new Uint8Array(await readFile(path.join(folder, name)));
    const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`;
    assets.set(name, { body, contentType, etag });
  }
  return assets;
}
