import { performance } from "node:perf_hooks";
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { timing } from "hono/timing";
import { DispatchError, describeError } from "../../utils/errors.js";
import { RateLimiter } from "../../core/rate-limiter.js";
import type { Logger } from "../../logging/logger.js";
import type { InboundMessage } from "../channel.js";
import type { ApiEvents } from "./api-events.js";
import { createBearerCheck } from "./bearer-token.js";
import type { ControlPlane } from "./control-plane.js";
import { RateLimitedError, errorBody, respondWithError } from "./http-errors.js";
import {
  MAX_TEXT_LENGTH,
  parseForget,
  parsePathChatId,
  parsePostMessage,
  type PostMessageBody,
} from "./request-schemas.js";

export interface HttpApiLimits {
  /** Largest request body, in bytes; bigger ones get 413 before they are read. */
  maxBodyBytes: number;
  /**
   * `POST /v1/messages` for all chats together per minute. Each chat's own budget is the
   * inbox's (`messagesPerChatPerMinute` in config), the same for every channel.
   */
  messagesPerMinute: number;
}

export const DEFAULT_HTTP_LIMITS: Readonly<HttpApiLimits> = {
  maxBodyBytes: 1024 * 1024,
  messagesPerMinute: 600,
};

export interface HttpApiDeps {
  control: ControlPlane;
  /** The bearer token every route but `/healthz` wants. */
  token: string;
  logger: Logger;
  limits?: Partial<HttpApiLimits>;
  /** Milliseconds on a monotonic clock, for the rate limiter; tests pass a manual one. */
  now?: () => number;
  /** `GET /v1/events`; without it the route answers 404. */
  events?: ApiEvents;
}

/** Routes and the methods they take; any other method gets 405 with `Allow`. */
const ALLOWED_METHODS: readonly (readonly [string, readonly string[]])[] = [
  ["/healthz", ["GET"]],
  ["/metrics", ["GET"]],
  ["/v1/messages", ["POST"]],
  ["/v1/nodes", ["GET"]],
  ["/v1/sessions", ["GET"]],
  ["/v1/sessions/:chat_id", ["GET", "DELETE"]],
  ["/v1/sessions/:chat_id/restart", ["POST"]],
];

const EVENTS_ROUTE = ["/v1/events", ["GET"]] as const;

/** The HTTP API's one rate bucket: every `POST /v1/messages`, whatever its chat. */
const ALL_MESSAGES = "all";

/**
 * The local HTTP API as a hono app: the `http` channel (`POST /v1/messages`) and the control
 * plane (sessions, health, metrics). Pure: it listens nowhere; `startHttpServer` serves it.
 */
export function createHttpApi(deps: HttpApiDeps): Hono {
  const { control, logger } = deps;
  const limits = { ...DEFAULT_HTTP_LIMITS, ...deps.limits };
  if (!Number.isInteger(limits.maxBodyBytes) || limits.maxBodyBytes <= 0) {
    throw new DispatchError(
      "invalid_http_limits",
      `Expected \`maxBodyBytes\` to be a positive integer, got \`${limits.maxBodyBytes}\``,
    );
  }
  if (deps.token.trim().length === 0) {
    throw new DispatchError(
      "invalid_api_token",
      "The HTTP API needs a non-empty token. Set DISPATCH_API_TOKEN or let dispatch create one.",
    );
  }
  const limiter = new RateLimiter({
    perMinute: limits.messagesPerMinute,
    now: deps.now ?? (() => performance.now()),
  });
  const checkBearer = createBearerCheck(deps.token);

  const app = new Hono();

  // First, so it spans everything dispatch does with a request: `Server-Timing: total;dur=<ms>`
  // on every response. For `wait: true` that is from the message's arrival to its reply.
  app.use(timing({ totalDescription: "accepted to response" }));
  app.use(requestLog(logger));
  app.use(async (c, next) => {
    if (c.req.path === "/healthz") return next();
    const failure = checkBearer(c.req.header("Authorization"));
    if (failure !== undefined) throw new DispatchError("unauthorized", failure);
    return next();
  });

  app.get("/healthz", (c) => {
    const health = control.health();
    return c.json(health, health.status === "shutting_down" ? 503 : 200);
  });

  app.get("/metrics", async (c) => {
    const metrics = await control.metrics();
    return c.body(metrics.body, 200, { "Content-Type": metrics.contentType });
  });

  app.post(
    "/v1/messages",
    bodyLimit({
      maxSize: limits.maxBodyBytes,
      onError: (c) => {
        // The rest of the body is not wanted: close the connection instead of draining it.
        c.header("Connection", "close");
        throw new DispatchError(
          "payload_too_large",
          `The request body is larger than ${limits.maxBodyBytes} bytes. ` +
            `Send a shorter text (at most ${MAX_TEXT_LENGTH} characters).`,
        );
      },
    }),
    async (c) => {
      const body = parsePostMessage(await readJson(c));
      const decision = limiter.take(ALL_MESSAGES);
      if (!decision.allowed) {
        const seconds = Math.max(1, Math.ceil(decision.retryAfterMs / 1000));
        throw new RateLimitedError(
          `dispatch took more than ${limits.messagesPerMinute} messages a minute over HTTP; try again in ${seconds} s.`,
          decision.retryAfterMs,
        );
      }
      const wait = body.wait ?? false;
      const result = await control.submit(toInbound(body), { wait });
      if (wait) {
        return c.json(
          {
            chat_id: result.chat_id,
            session_name: result.session_name,
            session_id: result.session_id,
            reply: result.reply ?? null,
            message_id: result.message_id,
          },
          200,
        );
      }
      return c.json({ message_id: result.message_id, chat_id: result.chat_id }, 202);
    },
  );

  app.get("/v1/nodes", async (c) => c.json(await control.listNodes()));

  app.get("/v1/sessions", (c) => c.json(control.listSessions()));

  const events = deps.events;
  if (events !== undefined) app.get("/v1/events", (c) => events.serve(c));

  app.get("/v1/sessions/:chat_id", (c) => {
    const chatId = parsePathChatId(c.req.param("chat_id"));
    const session = control.getSession(chatId);
    if (session === undefined) {
      throw new DispatchError(
        "not_found",
        `No session is registered for chat ${chatId}. GET /v1/sessions lists the chats dispatch knows.`,
      );
    }
    return c.json(session);
  });

  app.post("/v1/sessions/:chat_id/restart", async (c) => {
    const chatId = parsePathChatId(c.req.param("chat_id"));
    return c.json(await control.restartSession(chatId));
  });

  app.delete("/v1/sessions/:chat_id", async (c) => {
    const chatId = parsePathChatId(c.req.param("chat_id"));
    const forget = parseForget(c.req.query("forget"));
    const { archive } = await control.stopSession(chatId, { forget });
    return c.json({ chat_id: chatId, stopped: true, forgotten: forget, archive });
  });

  const allowedMethods =
    events === undefined ? ALLOWED_METHODS : [...ALLOWED_METHODS, EVENTS_ROUTE];
  for (const [path, allowed] of allowedMethods) {
    app.all(path, (c) => {
      c.header("Allow", (allowed.includes("GET") ? [...allowed, "HEAD"] : allowed).join(", "));
      throw new DispatchError(
        "method_not_allowed",
        `${c.req.method} is not allowed on ${c.req.path}; use ${allowed.join(" or ")}.`,
      );
    });
  }

  app.notFound((c) =>
    c.json(
      errorBody(
        "not_found",
        `There is no route ${c.req.method} ${c.req.path}. The API serves /v1/messages, ` +
          "/v1/sessions, /v1/sessions/:chat_id, /v1/events, /v1/nodes, /healthz and /metrics.",
      ),
      404,
    ),
  );

  app.onError((error, c) => respondWithError(c, error, logger, "http-request-fail"));

  return app;
}

/** Logs method, path, status and duration of every request at debug; never bodies or headers. */
function requestLog(logger: Logger): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    try {
      await next();
    } catch (error) {
      // hono hands only Error instances to onError; anything else thrown ends up here.
      c.res = respondWithError(c, error, logger, "http-request-fail");
    }
    logger.debug("http-request", {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    });
  };
}

async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === "") {
    throw new DispatchError(
      "invalid_json",
      'The request body is empty. Send a JSON object such as {"chat_id": "+15551234567", "text": "hi"}.',
    );
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new DispatchError(
      "invalid_json",
      `The request body is not valid JSON (${describeError(error)}). ` +
        'Send a JSON object such as {"chat_id": "+15551234567", "text": "hi"}.',
    );
  }
}

function toInbound(body: PostMessageBody): InboundMessage {
  return {
    channel: "http",
    chatId: body.chat_id,
    text: body.text,
    ...(body.sender !== undefined && { sender: body.sender }),
    ...(body.group_name !== undefined && { groupName: body.group_name }),
    ...(body.message_id !== undefined && { externalId: body.message_id }),
    receivedAt: new Date(),
  };
}
