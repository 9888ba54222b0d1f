/**
 * The dashboard as a hono app: the page and its files (public: they hold no data), and its JSON
 * API under `/v1/dashboard/` (the API's bearer token, sent by the page in the Authorization
 * header). Pure: it listens nowhere; the daemon mounts it beside the HTTP API (`withDashboard`).
 */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { createBearerCheck } from "../channels/http/bearer-token.js";
import { errorBody, respondWithError } from "../channels/http/http-errors.js";
import type { FetchApp } from "../channels/http/http-server.js";
import { MAX_TEXT_LENGTH, parsePathChatId } from "../channels/http/request-schemas.js";
import { DispatchError } from "../utils/errors.js";
import type { Logger } from "../logging/logger.js";
import { findClientFolder, loadClientAssets, type ClientAsset } from "./client-assets.js";
import type { DashboardContacts } from "./dashboard-contacts.js";
import type { DashboardSession, DashboardSource } from "./dashboard-source.js";
import { createContactsRoutes } from "./contacts-routes.js";
import { serveEventStream } from "./event-stream.js";
import { createLogRoutes, type DashboardLog } from "./log-routes.js";
import { createSignInCodes, SIGN_IN_CODE_TTL_MS, type SignInCodes } from "./sign-in-codes.js";
import { systemClock, type Clock } from "../utils/clock.js";

export interface DashboardRoutesDeps {
  source: DashboardSource;
  /** The Contacts view's reads and changes (`/v1/dashboard/contacts`). */
  contacts: DashboardContacts;
  /** The daemon's recent log lines, for the Log view (`/v1/dashboard/logs`). */
  log: DashboardLog;
  /** The HTTP API's bearer token. */
  token: string;
  logger: Logger;
  /** The folder of the page's files; found beside this module by default. */
  assetsDir?: string;
  /** Server-sent heartbeat period. Default 15 s. */
  heartbeatMs?: number;
  /** Turns of a transcript sent with a session, the latest. Default 500. */
  maxTurns?: number;
  /** What times the sign-in codes (`dispatch dashboard`). The system's by default. */
  clock?: Pick<Clock, "now">;
  /** The one-time sign-in codes; in memory, with the defaults of `sign-in-codes.ts`, by default. */
  signInCodes?: SignInCodes;
}

/** The one path under `/v1/dashboard/` that takes no token: it trades a sign-in code for it. */
const SIGN_IN_PATH = "/v1/dashboard/sign-in";
const NOT_STORED = { "Cache-Control": "no-store" };

/** What a browser may load and where it may connect: this origin only, nothing inline. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "Content-Security-Policy": CONTENT_SECURITY_POLICY,
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "Cache-Control": "no-cache",
};

const sendBodySchema = z.strictObject({
  text: z.string().min(1).max(MAX_TEXT_LENGTH),
});

const signInBodySchema = z.strictObject({ code: z.string().min(1).max(200) });

const RUN_AGAIN = "Run `dispatch dashboard` again for a new link, or sign in with the API token.";

export function createDashboardRoutes(deps: DashboardRoutesDeps): Hono {
  const { source, logger } = deps;
  if (deps.token.trim() === "") {
    throw new DispatchError("invalid_api_token", "The dashboard needs the API's non-empty token.");
  }
  const checkBearer = createBearerCheck(deps.token);
  const heartbeatMs = deps.heartbeatMs ?? 15_000;
  const maxTurns = deps.maxTurns ?? 500;
  const signInCodes = deps.signInCodes ?? createSignInCodes({ clock: deps.clock ?? systemClock });
  let assets: Promise<Map<string, ClientAsset>> | undefined;
  const loadAssets = () => {
    assets ??= (() => {
      const folder = deps.assetsDir ?? findClientFolder();
      if (folder === undefined) {
        return Promise.reject(
          new DispatchError(
            "dashboard_assets_missing",
            "The dashboard's files (src/dashboard/client) are missing: reinstall dispatch.",
          ),
        );
      }
      return loadClientAssets(folder);
    })();
    // A failed load is tried again on the next request.
    assets.catch(() => (assets = undefined));
    return assets;
  };

  const app = new Hono();

  const serveAsset = async (c: Context, name: string) => {
    const asset = (await loadAssets()).get(name);
    if (asset === undefined) {
      throw new DispatchError(
        "not_found",
        `The dashboard has no file ${name}. Open the dashboard at / instead.`,
      );
    }
    const headers = { ...PAGE_HEADERS, "Content-Type": asset.contentType, ETag: asset.etag };
    if (c.req.header("If-None-Match") === asset.etag) return c.body(null, 304, headers);
    return c.body(asset.body, 200, headers);
  };

  app.get("/", (c) => serveAsset(c, "index.html"));
  app.get("/assets/:name", (c) => serveAsset(c, c.req.param("name")));

  app.use("/v1/dashboard/*", async (c, next) => {
    if (c.req.path === SIGN_IN_PATH) return next();
    const failure = checkBearer(c.req.header("Authorization"));
    if (failure !== undefined) throw new DispatchError("unauthorized", failure);
    await next();
  });

  app.get("/v1/dashboard/about", (c) => c.json(source.about()));

  // `dispatch dashboard`: a one-time code for a link that signs a browser in (in its fragment,
  // which browsers never send), traded once for the token below.
  app.post("/v1/dashboard/sign-in-codes", (c) => {
    const { code, expiresAt } = signInCodes.issue();
    const expiresInSeconds = Math.round((expiresAt - (deps.clock ?? systemClock).now()) / 1000);
    return c.json(
      {
        code,
        expires_at: new Date(expiresAt).toISOString(),
        expires_in_seconds: expiresInSeconds,
      },
      201,
      NOT_STORED,
    );
  });

  app.post(
    SIGN_IN_PATH,
    bodyLimit({
      maxSize: 4096,
      onError: () => {
        throw new DispatchError("payload_too_large", 'Send only {"code": "..."}.');
      },
    }),
    async (c) => {
      const body = signInBodySchema.safeParse(await c.req.json().catch(() => undefined));
      if (!body.success) {
        throw new DispatchError(
          "bad_request",
          'Send a JSON object {"code": "..."} with the code from the sign-in link.',
        );
      }
      const outcome = signInCodes.redeem(body.data.code);
      logger.info("dashboard-sign-in", { outcome });
      if (outcome === "expired") {
        throw new DispatchError(
          "sign_in_code_expired",
          `This sign-in link has expired (a link works for ${Math.round(SIGN_IN_CODE_TTL_MS / 1000)} seconds). ${RUN_AGAIN}`,
        );
      }
      if (outcome === "unknown") {
        throw new DispatchError(
          "sign_in_code_invalid",
          `This sign-in link has been used already, or the daemon restarted since it was made (a link works once). ${RUN_AGAIN}`,
        );
      }
      return c.json({ token: deps.token }, 200, NOT_STORED);
    },
  );

  app.route("/v1/dashboard/contacts", createContactsRoutes(deps.contacts));

  app.get("/v1/dashboard/sessions", (c) => c.json(source.listSessions()));

  app.get("/v1/dashboard/sessions/:chat_id", async (c) => {
    const chatId = parsePathChatId(c.req.param("chat_id"));
    const session = source.getSession(chatId);
    if (session === undefined) throw notFound(chatId);
    const turns = await source.transcript(chatId);
    return c.json({
      session,
      transcript: turns.slice(-maxTurns),
      transcript_turns: turns.length,
    });
  });

  app.get("/v1/dashboard/health", (c) => c.json(source.health()));

  app.get("/v1/dashboard/events", (c) =>
    serveEventStream(c, {
      heartbeatMs,
      // The subscription below ends the stream itself at shutdown.
      untilEnd: () => () => {},
      start: (send, end) => {
        const sendSessions = (sessions: DashboardSession[]) =>
          send("sessions", JSON.stringify(sessions));
        const unsubscribe = source.subscribe(sendSessions, end);
        sendSessions(source.listSessions());
        return unsubscribe;
      },
    }),
  );

  app.route(
    "/v1/dashboard/logs",
    createLogRoutes({
      log: deps.log,
      heartbeatMs,
      // Log streams end when the sessions' do: when the daemon shuts down.
      untilEnd: (end) => source.subscribe(() => {}, end),
    }),
  );

  app.post("/v1/dashboard/sessions/:chat_id/restart", async (c) => {
    const chatId = parsePathChatId(c.req.param("chat_id"));
    return c.json(await source.restart(chatId));
  });

  app.post("/v1/dashboard/sessions/:chat_id/stop", async (c) => {
    const chatId = parsePathChatId(c.req.param("chat_id"));
    await source.stop(chatId);
    return c.json({ chat_id: chatId, stopped: true });
  });

  app.post("/v1/dashboard/sessions/:chat_id/forget", async (c) => {
    const chatId = parsePathChatId(c.req.param("chat_id"));
    await source.forget(chatId);
    return c.json({ chat_id: chatId, forgotten: true });
  });

  app.post(
    "/v1/dashboard/sessions/:chat_id/send",
    bodyLimit({
      maxSize: 1024 * 1024,
      onError: () => {
        throw new DispatchError(
          "payload_too_large",
          `The message is too long; send at most ${MAX_TEXT_LENGTH} characters.`,
        );
      },
    }),
    async (c) => {
      const chatId = parsePathChatId(c.req.param("chat_id"));
      const body = sendBodySchema.safeParse(await c.req.json().catch(() => undefined));
      if (!body.success) {
        throw new DispatchError(
          "bad_request",
          `Send a JSON object {"text": "..."} with 1 to ${MAX_TEXT_LENGTH} characters of text.`,
        );
      }
      const reply = await source.send(chatId, body.data.text);
      return c.json({ chat_id: chatId, reply });
    },
  );

  app.all("/v1/dashboard/*", (c) =>
    c.json(
      errorBody(
        "not_found",
        `There is no dashboard route ${c.req.method} ${c.req.path}. Open the dashboard at / instead.`,
      ),
      404,
    ),
  );

  app.onError((error, c) => respondWithError(c, error, logger, "dashboard-request-fail"));

  return app;
}

function notFound(chatId: string): DispatchError {
  return new DispatchError(
    "not_found",
    `No session is registered for chat ${chatId}. The Sessions view lists the chats dispatch knows.`,
  );
}

/**
 * One app serving the dashboard's routes first and everything else from `api`, which keeps its
 * own 404s, 405s and error bodies.
 */
export function withDashboard(dashboard: Hono, api: FetchApp): Hono {
  const app = new Hono();
  app.route("/", dashboard);
  app.all("*", (c) => api.fetch(c.req.raw, c.env));
  return app;
}
