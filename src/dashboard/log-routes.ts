/**
 * The Log view's API, mounted by `dashboard-routes.ts` under `/v1/dashboard/logs` behind its
 * bearer token: `GET /` the recent lines (`?after=<seq>` for the newer ones only), and
 * `GET /events`, a server-sent event stream that sends the recent lines (`lines`, the last
 * `maxBacklog`, or those after `Last-Event-ID`) and then each new one (`line`, its `seq` as the
 * event id). Secrets are redacted before a line gets here (`logging/log-ring.ts`).
 */
import { Hono } from "hono";
import { DispatchError } from "../utils/errors.js";
import type { LogLine, LogRing } from "../logging/log-ring.js";
import { serveEventStream } from "./event-stream.js";

export type { LogLine } from "../logging/log-ring.js";

/** What the Log view reads of the daemon's log. */
export type DashboardLog = Pick<LogRing, "recent" | "subscribe">;

export interface LogRoutesDeps {
  log: DashboardLog;
  heartbeatMs: number;
  /** Calls `end` when the daemon shuts down; returns an unsubscribe. */
  untilEnd(end: () => void): () => void;
  /** Lines sent first to a new reader. Default 500. */
  maxBacklog?: number;
}

export function createLogRoutes(deps: LogRoutesDeps): Hono {
  const { log } = deps;
  const maxBacklog = deps.maxBacklog ?? 500;
  const app = new Hono();

  app.get("/", (c) => {
    const after = parseSeq(c.req.query("after"), "after");
    return c.json({ lines: log.recent(after) });
  });

  app.get("/events", (c) => {
    const after = parseSeq(c.req.header("Last-Event-ID"), "Last-Event-ID");
    return serveEventStream(c, {
      heartbeatMs: deps.heartbeatMs,
      untilEnd: (end) => deps.untilEnd(end),
      start: (send) => {
        const backlog = log.recent(after);
        const first = after === undefined ? backlog.slice(-maxBacklog) : backlog;
        const lastSent = first.at(-1)?.seq ?? after;
        send("lines", JSON.stringify(first), lastSent === undefined ? undefined : String(lastSent));
        return log.subscribe((line: LogLine) =>
          send("line", JSON.stringify(line), String(line.seq)),
        );
      },
    });
  });

  return app;
}

function parseSeq(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === "") return undefined;
  if (!/^\d{1,15}$/.test(value)) {
    throw new DispatchError(
      "bad_request",
      `\`${name}\` must be the number of a log line (its seq), got ${JSON.stringify(value.slice(0, 40))}.`,
    );
  }
  return Number(value);
}
