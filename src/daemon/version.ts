import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
/** From package.json, which sits two folders up from both src/daemon and dist/daemon. */
export const DISPATCH_VERSION = (require("../../package.json") as { version: string }).version;
