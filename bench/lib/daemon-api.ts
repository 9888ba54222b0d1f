/** The benchmark's HTTP calls to a daemon, and reading its Prometheus metrics. */
import { Agent, request } from "node:http";

/**
 * Keep-alive connections without a cap and, unlike fetch, without a response timeout: a reply
 * that waits minutes for a pool slot is slow, not failed.
 */
const agent = new Agent({ keepAlive: true });

export function postJson(
  port: number,
  token: string,
  body: unknown,
  /** On a new connection of its own, not one kept alive from an earlier request. */
  options: { fresh?: boolean } = {},
): Promise<{ status: number; text: string; serverMs?: number }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: "127.0.0.1",
        port,
        path: "/v1/messages",
        method: "POST",
        agent: options.fresh ? false : agent,
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
        },
      },
      (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (text += chunk));
        response.once("end", () => {
          const serverMs = serverTimingTotal(response.headers["server-timing"]);
          resolve({
            status: response.statusCode ?? 0,
            text,
            ...(serverMs === undefined ? {} : { serverMs }),
          });
        });
        response.once("error", reject);
      },
    );
    outgoing.once("error", reject);
    outgoing.end(payload);
  });
}

/**
 * The daemon's own time for a request, from its `Server-Timing: total;dur=<ms>` header: from
 * the request's arrival in the daemon to its response, without the trip over loopback.
 */
export function serverTimingTotal(header: string | string[] | undefined): number | undefined {
  const text = Array.isArray(header) ? header.join(",") : header;
  const match = /(?:^|,)\s*total;dur=([0-9.]+)/.exec(text ?? "");
  return match ? Number(match[1]) : undefined;
}

/** Prometheus text: `name{labels} value` lines, comments skipped. */
export function parseMetrics(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const space = line.lastIndexOf(" ");
    values.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return values;
}

/** Sum of every series of a metric, whatever its labels. */
export function metricTotal(metrics: Map<string, number>, name: string): number {
  let total = 0;
  for (const [key, value] of metrics) {
    if (key === name || key.startsWith(`${name}{`)) total += value;
  }
  return total;
}
