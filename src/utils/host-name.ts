/** Host names as config and the HTTP server take them. Pure: no I/O. */

/** A DNS name, an IPv4 address, or an IPv6 address in brackets (a regular expression source). */
export const HOST_NAME = String.raw`\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?`;
const HOST_NAME_ONLY = new RegExp(`^(?:${HOST_NAME})$`, "i");

/** Whether `value` is a host name as `channels.http.allowedHosts` takes it: no scheme, no port. */
export function isHostName(value: string): boolean {
  return HOST_NAME_ONLY.test(value);
}
