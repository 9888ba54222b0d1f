/**
 * Which `Host` headers the HTTP server answers: the guard against DNS rebinding. A web page on
 * `evil.example` whose name its owner re-points at 127.0.0.1 can make the browser send requests to
 * the daemon as its own origin; they still carry `Host: evil.example`, so only requests addressed
 * to a name the daemon knows are served. Pure: no I/O.
 */
import { HOST_NAME } from "../../utils/host-name.js";

/** Always answered: the names a local client (the CLI, a browser on this machine) uses. */
export const LOOPBACK_HOST_NAMES: readonly string[] = ["127.0.0.1", "localhost", "[::1]"];

/** `name` or `name:port`. */
const HOST_HEADER = new RegExp(String.raw`^(${HOST_NAME})(?::\d{1,5})?$`, "i");

/** The host name of a `Host` header, lower case, without its port; undefined when malformed. */
export function hostNameOf(header: string | undefined): string | undefined {
  const match = HOST_HEADER.exec(header?.trim() ?? "");
  return match?.[1]?.toLowerCase();
}

export interface HostCheck {
  /** Whether a request with this `Host` header (any port) may be served. */
  allows(header: string | undefined): boolean;
  /** Every name answered, loopback names first. */
  names: readonly string[];
}

/** The loopback names plus `extraNames` (host names without a port, any case). */
export function createHostCheck(extraNames: readonly string[] = []): HostCheck {
  const names = [
    ...new Set([...LOOPBACK_HOST_NAMES, ...extraNames.map((name) => name.toLowerCase())]),
  ];
  const allowed = new Set(names);
  return {
    names,
    allows: (header) => {
      const name = hostNameOf(header);
      return name !== undefined && allowed.has(name);
    },
  };
}
