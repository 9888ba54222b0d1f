/**
 * The settings that make the daemon a node of a cluster (issue 14, `docs/cluster.md`): the
 * PostgreSQL URL and the node's id. Pure: no I/O; the host name comes in as an argument.
 */

/** A node id: 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or a digit. */
export const NODE_ID_MAX_LENGTH = 64;
const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const NODE_ID_EXPECTATION = `1 to ${NODE_ID_MAX_LENGTH} letters, digits, \`.\`, \`_\` or \`-\`, starting with a letter or a digit`;

export function isNodeId(value: string): boolean {
  return value.length <= NODE_ID_MAX_LENGTH && NODE_ID.test(value);
}

/**
 * The host name and the HTTP port, `myhost-7878`: unique per daemon on a machine, readable in
 * `dispatch status`. A host name's characters a node id does not take become `-`; a long one is
 * cut so the port always fits.
 */
export function defaultNodeId(hostName: string, port: number): string {
  const suffix = `-${port}`;
  const host =
    hostName
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, "-")
      .replace(/^[^a-z0-9]+/, "")
      .slice(0, NODE_ID_MAX_LENGTH - suffix.length) || "node";
  return `${host}${suffix}`;
}

/**
 * Why `value` is not a database URL dispatch takes, or undefined when it is one. The reason never
 * repeats the value: it may hold a password.
 */
export function databaseUrlProblem(value: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    return "it is not a URL";
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    return `its scheme is \`${parsed.protocol.slice(0, 20)}\``;
  }
  if (parsed.hostname === "" && !parsed.searchParams.has("host")) return "it names no host";
  return undefined;
}

/** The sentence a bad URL gets, in config.json or the environment; `key` names where it was. */
export function databaseUrlMessage(key: string, problem: string): string {
  return (
    `Expected \`${key}\` to be a PostgreSQL URL such as ` +
    `postgres://dispatch:password@db.example.com:5432/dispatch, but ${problem} ` +
    "(the value is not shown: it may hold a password)"
  );
}

/** The password of a database URL, to hide it from logs; undefined when there is none. */
export function databasePassword(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const password = new URL(url).password;
    return password === "" ? undefined : decodeURIComponent(password);
  } catch {
    return undefined;
  }
}
