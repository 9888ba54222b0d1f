/**
 * The shape of `~/dispatch/config.json`: every key optional, every default in one place, and an
 * unknown or misspelt key an error rather than a silent no-op. The schema is built per machine
 * (`createConfigSchema(context)`) because some defaults depend on it: the home folder, the
 * platform and mode (iMessage only on macOS, and not in demo mode) and the memory (how many
 * sessions may be live at once).
 *
 * Each leaf's zod error message is the *expectation* only ("a positive integer"); `problems.ts`
 * turns an issue into the full sentence with the key path and the value found.
 */
import path from "node:path";
import { isSupportedCountry, type CountryCode } from "libphonenumber-js";
import { z } from "zod";
import { isHostName } from "../utils/host-name.js";
import {
  databaseUrlMessage,
  databaseUrlProblem,
  defaultNodeId,
  isNodeId,
  NODE_ID_EXPECTATION,
} from "./database.js";
import type { DEFAULT_TIERS, Tier } from "../utils/ids.js";

/** The dispatch MCP tool that lets an agent send an extra message to its chat. */
export const SEND_MESSAGE_TOOL = "mcp__dispatch__send_message";

/**
 * Permission modes a tier may use. `bypassPermissions` is left out on purpose: the SDK's CLI
 * refuses it when running as root, and it would let an agent ignore its tier's tool limits.
 */
export const PERMISSION_MODES = ["default", "acceptEdits", "plan", "dontAsk"] as const;
export type PermissionMode = (typeof PERMISSION_MODES)[number];

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const UNKNOWN_SENDER_POLICIES = ["ignore", "respond"] as const;
export type UnknownSenderPolicy = (typeof UNKNOWN_SENDER_POLICIES)[number];
export const SESSION_SCOPES = ["person", "chat"] as const;
/** Whose messages share a session: a contact's handles (`person`), or each chat alone. */
export type SessionScope = (typeof SESSION_SCOPES)[number];

/** What a tier's chats get: whether they are answered at all, and what their agent may do. */
export interface TierConfig {
  respond: boolean;
  /** Unset: the top-level `model`, else the SDK default. */
  model?: string;
  allowedTools: string[];
  disallowedTools: string[];
  permissionMode: PermissionMode;
  /** Appended to the agent's system prompt for this tier's chats. */
  systemPrompt?: string;
  /** Live-session slots kept free for this tier's chats while it holds fewer (default 0). */
  reservedLiveSessions?: number;
  /**
   * Most model requests one turn may make (the SDK's `maxTurns`): a turn that reaches it is
   * stopped and the contact told. Unset: no limit.
   */
  maxTurns?: number;
  /**
   * Most US dollars an agent process may spend (the SDK's `maxBudgetUsd`, counted from the
   * process's start across its turns); a turn that reaches it is stopped, the contact told, and
   * the session restarted so the count starts again. Unset: no limit.
   */
  maxBudgetUsd?: number;
}

export interface HttpChannelConfig {
  enabled: boolean;
  /** Host names answered besides 127.0.0.1, localhost and [::1]; lower case, without a port. */
  allowedHosts: string[];
  /** Longest a client may take to send a request's head. */
  headersTimeoutSeconds: number;
  /** Longest a client may take to send a whole request (not the wait for its reply). */
  requestTimeoutSeconds: number;
  /** How long an idle keep-alive connection stays open. */
  keepAliveTimeoutSeconds: number;
  /** Open connections at most. */
  maxConnections: number;
  /** Where every reply of an HTTP chat is POSTed, signed; unset: no webhook. */
  webhook?: ReplyWebhookConfig;
}

export interface ReplyWebhookConfig {
  /** An http:// or https:// URL. */
  url: string;
  /** The HMAC-SHA256 key of `X-Dispatch-Signature`; at least 16 characters. */
  secret: string;
  /** How long one delivery may take before it counts as failed. */
  timeoutSeconds: number;
}

export interface ImessageChannelConfig {
  enabled: boolean;
  /** Absolute, `~` expanded. */
  dbPath: string;
  pollIntervalMs: number;
  /** Rows older than this when first seen are recorded but never answered. */
  maxBackfillAgeSeconds: number;
  /**
   * argv run with three more arguments: `buddy|chat`, the recipient, the text. Unset: the
   * bundled AppleScript via osascript. A leading `~/` in the program is expanded.
   */
  sendCommand?: string[];
}

export interface SignalChannelConfig {
  enabled: boolean;
  /** signal-cli's daemon (`daemon --http`), without a trailing slash. */
  url: string;
  /** The Signal account signal-cli sends and receives as (E.164); set when `enabled`. */
  account: string;
}

/** Where the shared state is (`docs/cluster.md`). */
export interface DatabaseConfig {
  /**
   * `postgres://...`: the registry and the transcript mirror live in that PostgreSQL database.
   * Unset: everything stays on this machine, in `state/journal.db` (the embedded default).
   */
  url: string | undefined;
  /** This daemon's name among the nodes of one database: host name and port unless set. */
  nodeId: string;
}

export interface ChannelsConfig {
  http: HttpChannelConfig;
  imessage: ImessageChannelConfig;
  signal: SignalChannelConfig;
}

/** Running as one node of several on a shared PostgreSQL database (`docs/cluster.md`). */
export interface ClusterConfig {
  /**
   * How long a node's lease on a session holds without renewal (it renews every third of it):
   * the longest a dead node's chats wait before another node takes them over.
   */
  leaseSeconds: number;
}

/** The resolved configuration: every default applied, tiers merged, paths absolute. */
export interface Config {
  port: number;
  /** Absolute, `~` expanded. Each session's cwd is `<transcriptsDir>/<session-name>`. */
  transcriptsDir: string;
  /** Unset: the SDK default. */
  model?: string;
  healthCheckIntervalSeconds: number;
  idleTimeoutSeconds: number;
  maxLiveSessions: number;
  /**
   * Live-session slots kept for chats in contacts.json (every tier but `unknown`) while they
   * hold fewer; unset in the file: 1 when `maxLiveSessions` leaves room for it, else 0.
   */
  reservedLiveSessionsForContacts: number;
  spareProcesses: number;
  unknownSenders: UnknownSenderPolicy;
  /**
   * `person`: the handles of one contact in contacts.json share one session and one memory;
   * `chat`: one session per chat id. Groups are their own sessions either way.
   */
  sessionScope: SessionScope;
  /** Messages one chat (by its normalised id) may send per minute, on any channel. */
  messagesPerChatPerMinute: number;
  /** New chats of the `unknown` tier taken in any minute; the rest are refused. */
  newUnknownChatsPerMinute: number;
  /** For phone numbers written without a country code. */
  defaultRegion?: CountryCode;
  maxConsecutiveErrors: number;
  turnTimeoutSeconds: number;
  shutdownGraceSeconds: number;
  /**
   * How long a registry change that only moves bookkeeping (turns, times) may wait for its
   * write: what a `kill -9` can lose of it. Session ids are written at once regardless.
   */
  registryBookkeepingDelaySeconds: number;
  logLevel: LogLevel;
  /** Always holds every built-in tier, plus any the file adds. */
  tiers: Record<Tier, TierConfig>;
  channels: ChannelsConfig;
  cluster: ClusterConfig;
  database: DatabaseConfig;
}

/** What the defaults depend on; pass real values in the daemon and fixed ones in tests. */
export interface ConfigContext {
  /** The user's home folder (`os.homedir()`), for `~` and `~/transcripts`. */
  homeDir: string;
  platform: NodeJS.Platform;
  /** `os.totalmem()`. */
  totalMemoryBytes: number;
  /**
   * `dispatch start --demo`: answers every chat, so no channel that reaches real people is on
   * unless config.json turns it on by name (iMessage then defaults to off even on macOS).
   */
  demo?: boolean;
  /** `os.hostname()`, for the default node id; "localhost" when unset. */
  hostName?: string;
}

/** iMessage is on by default on macOS, except in demo mode. */
export function defaultImessageEnabled(context: ConfigContext): boolean {
  return context.platform === "darwin" && context.demo !== true;
}

/** The defaults that do not depend on the machine. */
export const STATIC_DEFAULTS = {
  port: 7878,
  healthCheckIntervalSeconds: 300,
  idleTimeoutSeconds: 7200,
  spareProcesses: 1,
  unknownSenders: "ignore",
  sessionScope: "person",
  messagesPerChatPerMinute: 30,
  newUnknownChatsPerMinute: 20,
  maxConsecutiveErrors: 3,
  turnTimeoutSeconds: 600,
  shutdownGraceSeconds: 30,
  registryBookkeepingDelaySeconds: 5,
  logLevel: "info",
  imessageDbPath: "~/Library/Messages/chat.db",
  imessagePollIntervalMs: 500,
  imessageMaxBackfillAgeSeconds: 300,
  signalUrl: "http://127.0.0.1:8080",
  httpHeadersTimeoutSeconds: 10,
  httpRequestTimeoutSeconds: 30,
  httpKeepAliveTimeoutSeconds: 5,
  httpMaxConnections: 512,
  clusterLeaseSeconds: 15,
  webhookTimeoutSeconds: 10,
} as const;

/**
 * The range of `cluster.leaseSeconds`. Under 3 s a renewal (every third of the lease) would be
 * due more than once a second; over 30 s a dead node's chats would wait longer than issue 14
 * allows for a failover.
 */
export const LEASE_SECONDS_RANGE = { min: 3, max: 30 } as const;

const MEMORY_PER_SESSION_BYTES = 512 * 1024 * 1024;

/** `reservedLiveSessionsForContacts` when the file leaves it unset and the bound has room. */
const DEFAULT_CONTACT_SLOTS = 1;

/**
 * One agent process per 512 MiB of memory, spares included (each is a process of the same
 * size), leaving at least 2 and at most 32 live sessions.
 */
export function defaultMaxLiveSessions(totalMemoryBytes: number, spareProcesses = 0): number {
  const processes = Math.floor(totalMemoryBytes / MEMORY_PER_SESSION_BYTES);
  return Math.max(2, Math.min(32, processes - spareProcesses));
}

/** `~` and `~/x` become the home folder; anything else is returned as it is. */
export function expandHome(value: string, homeDir: string): string {
  if (value === "~") return homeDir;
  if (value.startsWith("~/")) return path.join(homeDir, value.slice(2));
  return value;
}

const READ_ONLY_TOOLS = ["Read", "Glob", "Grep", SEND_MESSAGE_TOOL];

/**
 * The turn limits of the tiers below admin: a model stuck in a tool loop once made about 1,900
 * requests in one turn. Read-only tiers get room for a few files and searches; tiers that can
 * only send messages, and strangers, get little, and a spending limit too.
 */
export const TURN_LIMITS = {
  readOnly: { maxTurns: 30 },
  messageOnly: { maxTurns: 10, maxBudgetUsd: 1 },
} as const;

/**
 * The built-in tiers. `unknown` is answered only when `unknownSenders` is `"respond"`. A tier the
 * file adds starts from `NEW_TIER_BASE`.
 */
export function builtInTiers(
  unknownSenders: UnknownSenderPolicy,
): Record<(typeof DEFAULT_TIERS)[number], TierConfig> {
  const readOnly = (): TierConfig => ({
    respond: true,
    allowedTools: [...READ_ONLY_TOOLS],
    disallowedTools: [],
    permissionMode: "dontAsk",
    ...TURN_LIMITS.readOnly,
  });
  return {
    admin: {
      respond: true,
      allowedTools: [
        "Read",
        "Write",
        "Edit",
        "Glob",
        "Grep",
        "Bash",
        "WebFetch",
        "WebSearch",
        SEND_MESSAGE_TOOL,
      ],
      disallowedTools: [],
      permissionMode: "dontAsk",
    },
    partner: readOnly(),
    family: readOnly(),
    favorite: readOnly(),
    bots: { ...newTierBase(), respond: false },
    unknown: { ...newTierBase(), respond: unknownSenders === "respond" },
  };
}

/** Where a tier that only the config file names starts: answered, able only to send messages. */
export function newTierBase(): TierConfig {
  return {
    respond: true,
    allowedTools: [SEND_MESSAGE_TOOL],
    disallowedTools: [],
    permissionMode: "dontAsk",
    ...TURN_LIMITS.messageOnly,
  };
}

/** Zod params whose message is the expectation that `problems.ts` puts after "to be". */
const expecting = (expectation: string) => ({ error: expectation });

const POSITIVE_INTEGER = "a positive integer";
const POSITIVE_DOLLARS = "a positive number of US dollars";
const WHOLE_NUMBER = "a whole number (0 or more)";

const positiveInteger = () =>
  z.int(expecting(POSITIVE_INTEGER)).min(1, expecting(POSITIVE_INTEGER));
const wholeNumber = () => z.int(expecting(WHOLE_NUMBER)).min(0, expecting(WHOLE_NUMBER));
const nonEmptyString = (expectation: string) =>
  z.string(expecting(expectation)).min(1, expecting(expectation));
const object = <Shape extends z.ZodRawShape>(shape: Shape) =>
  z.strictObject(shape, expecting("an object"));

export const portSchema = z
  .int(expecting("an integer from 1 to 65535"))
  .min(1, expecting("an integer from 1 to 65535"))
  .max(65535, expecting("an integer from 1 to 65535"));

export const logLevelSchema = z.enum(LOG_LEVELS, expecting(quotedList(LOG_LEVELS)));

const toolList = () => z.array(nonEmptyString("a tool name"), expecting("an array of tool names"));

const tierSchema = object({
  respond: z.boolean(expecting("true or false")).optional(),
  model: nonEmptyString("a model name").optional(),
  allowedTools: toolList().optional(),
  disallowedTools: toolList().optional(),
  permissionMode: z.enum(PERMISSION_MODES, expecting(quotedList(PERMISSION_MODES))).optional(),
  systemPrompt: z.string(expecting("a string")).optional(),
  reservedLiveSessions: wholeNumber().optional(),
  maxTurns: positiveInteger().optional(),
  maxBudgetUsd: z
    .number(expecting(POSITIVE_DOLLARS))
    .positive(expecting(POSITIVE_DOLLARS))
    .optional(),
});

const LEASE_SECONDS_EXPECTATION = `an integer from ${LEASE_SECONDS_RANGE.min} to ${LEASE_SECONDS_RANGE.max}`;

const clusterSchema = object({
  leaseSeconds: z
    .int(expecting(LEASE_SECONDS_EXPECTATION))
    .min(LEASE_SECONDS_RANGE.min, expecting(LEASE_SECONDS_EXPECTATION))
    .max(LEASE_SECONDS_RANGE.max, expecting(LEASE_SECONDS_EXPECTATION))
    .default(STATIC_DEFAULTS.clusterLeaseSeconds),
});

const REGION_EXPECTATION = 'a two-letter region code such as "US" or "GB"';

export const UNKNOWN_TIER_CONFLICT =
  "`tiers.unknown.respond` disagrees with `unknownSenders`; set only `unknownSenders` " +
  '("respond" or "ignore") to decide whether unknown senders are answered';

const TIER_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** A path that is absolute or starts with `~/`, made absolute. */
const absolutePath = (homeDir: string) =>
  nonEmptyString("an absolute path or one starting with `~/`")
    .refine(
      (value) => value === "~" || value.startsWith("~/") || path.isAbsolute(value),
      expecting("an absolute path or one starting with `~/`"),
    )
    .transform((value) => expandHome(value, homeDir));

const HOST_NAME_EXPECTATION = 'a host name without scheme or port, such as "dispatch.example.com"';

const WEBHOOK_URL_EXPECTATION =
  'an http:// or https:// URL, such as "https://example.com/dispatch"';
const WEBHOOK_SECRET_EXPECTATION =
  "a string of at least 16 characters (make one with `openssl rand -hex 32`)";

function isWebhookUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "";
  } catch {
    return false;
  }
}

const httpSchema = object({
  enabled: z.boolean(expecting("true or false")).default(true),
  allowedHosts: z
    .array(
      z
        .string(expecting(HOST_NAME_EXPECTATION))
        .refine(isHostName, expecting(HOST_NAME_EXPECTATION))
        .transform((name) => name.toLowerCase()),
      expecting("an array of host names"),
    )
    .default([]),
  headersTimeoutSeconds: positiveInteger().default(STATIC_DEFAULTS.httpHeadersTimeoutSeconds),
  requestTimeoutSeconds: positiveInteger().default(STATIC_DEFAULTS.httpRequestTimeoutSeconds),
  keepAliveTimeoutSeconds: positiveInteger().default(STATIC_DEFAULTS.httpKeepAliveTimeoutSeconds),
  maxConnections: positiveInteger().default(STATIC_DEFAULTS.httpMaxConnections),
  webhook: object({
    url: z
      .string(expecting(WEBHOOK_URL_EXPECTATION))
      .refine(isWebhookUrl, expecting(WEBHOOK_URL_EXPECTATION)),
    secret: z.string(expecting(WEBHOOK_SECRET_EXPECTATION)),
    timeoutSeconds: positiveInteger().default(STATIC_DEFAULTS.webhookTimeoutSeconds),
  })
    .superRefine((webhook, context) => {
      if (webhook.secret.length >= 16) return;
      // Said without the value: it is a secret, even a short one.
      context.addIssue({
        code: "custom",
        input: "(not shown)",
        path: ["secret"],
        params: { complete: true },
        message:
          `Expected \`channels.http.webhook.secret\` to be ${WEBHOOK_SECRET_EXPECTATION}, got ` +
          `${webhook.secret.length} characters (not shown)`,
      });
    })
    .optional(),
}).superRefine((http, context) => {
  // Node's own rule: the head is part of the request, so it cannot be given longer.
  if (http.headersTimeoutSeconds <= http.requestTimeoutSeconds) return;
  context.addIssue({
    code: "custom",
    input: http.headersTimeoutSeconds,
    path: ["headersTimeoutSeconds"],
    params: { complete: true },
    message:
      `Expected \`channels.http.headersTimeoutSeconds\` (${http.headersTimeoutSeconds}) to be at ` +
      `most \`channels.http.requestTimeoutSeconds\` (${http.requestTimeoutSeconds}): a request's ` +
      "head is part of the request. Lower the first or raise the second",
  });
});

const SIGNAL_URL_EXPECTATION =
  'an http:// URL of signal-cli\'s `daemon --http` address, such as "http://127.0.0.1:8080"';
const SIGNAL_ACCOUNT_EXPECTATION =
  'the Signal account\'s phone number with its country code, such as "+15551234567"';

const signalSchema = object({
  enabled: z.boolean(expecting("true or false")).default(false),
  url: z
    .string(expecting(SIGNAL_URL_EXPECTATION))
    .refine(isHttpUrl, expecting(SIGNAL_URL_EXPECTATION))
    .transform((value) => value.replace(/\/+$/, ""))
    .default(STATIC_DEFAULTS.signalUrl),
  account: z
    .string(expecting(SIGNAL_ACCOUNT_EXPECTATION))
    .regex(/^\+[1-9][0-9]{6,14}$/, expecting(SIGNAL_ACCOUNT_EXPECTATION))
    .optional(),
}).transform((signal, context): SignalChannelConfig => {
  if (!signal.enabled) return { ...signal, account: signal.account ?? "" };
  if (signal.account === undefined) {
    context.issues.push({
      code: "custom",
      input: undefined,
      path: ["account"],
      params: { complete: true },
      message:
        "Expected `channels.signal.account` to be set when `channels.signal.enabled` is true: " +
        'the phone number signal-cli is registered with, such as "+15551234567"',
    });
    return z.NEVER;
  }
  return { ...signal, account: signal.account };
});

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.search === "";
  } catch {
    return false;
  }
}

/** `database.url`: refused without echoing the value, which may hold a password. */
const databaseUrl = () =>
  z.string(expecting("a postgres:// URL")).superRefine((value, context) => {
    const problem = databaseUrlProblem(value);
    if (problem === undefined) return;
    context.addIssue({
      code: "custom",
      input: "(hidden)",
      params: { complete: true },
      message: databaseUrlMessage("database.url", problem),
    });
  });

const databaseSchema = object({
  url: databaseUrl().optional(),
  nodeId: z
    .string(expecting(NODE_ID_EXPECTATION))
    .refine(isNodeId, expecting(NODE_ID_EXPECTATION))
    .optional(),
});

export function createConfigSchema(context: ConfigContext): z.ZodType<Config, unknown> {
  const { homeDir } = context;
  const imessage = object({
    enabled: z.boolean(expecting("true or false")).default(defaultImessageEnabled(context)),
    dbPath: absolutePath(homeDir).default(expandHome(STATIC_DEFAULTS.imessageDbPath, homeDir)),
    pollIntervalMs: positiveInteger().default(STATIC_DEFAULTS.imessagePollIntervalMs),
    maxBackfillAgeSeconds: wholeNumber().default(STATIC_DEFAULTS.imessageMaxBackfillAgeSeconds),
    sendCommand: z
      .array(nonEmptyString("a non-empty string"), expecting("an argv array of strings"))
      .min(1, expecting("an argv array of strings"))
      .transform(([program = "", ...rest]) => [expandHome(program, homeDir), ...rest])
      .optional(),
  });

  const file = z
    .strictObject(
      {
        port: portSchema.default(STATIC_DEFAULTS.port),
        transcriptsDir: absolutePath(homeDir).default(path.join(homeDir, "transcripts")),
        model: nonEmptyString("a model name").optional(),
        healthCheckIntervalSeconds: positiveInteger().default(
          STATIC_DEFAULTS.healthCheckIntervalSeconds,
        ),
        idleTimeoutSeconds: positiveInteger().default(STATIC_DEFAULTS.idleTimeoutSeconds),
        // Unset: `defaultMaxLiveSessions`, which depends on `spareProcesses` (see the transform).
        maxLiveSessions: positiveInteger().optional(),
        // Unset: 1 when it fits beside the tiers' reservations (see the transform).
        reservedLiveSessionsForContacts: wholeNumber().optional(),
        spareProcesses: wholeNumber().default(STATIC_DEFAULTS.spareProcesses),
        unknownSenders: z
          .enum(UNKNOWN_SENDER_POLICIES, expecting(quotedList(UNKNOWN_SENDER_POLICIES)))
          .default(STATIC_DEFAULTS.unknownSenders),
        sessionScope: z
          .enum(SESSION_SCOPES, expecting(quotedList(SESSION_SCOPES)))
          .default(STATIC_DEFAULTS.sessionScope),
        messagesPerChatPerMinute: positiveInteger().default(
          STATIC_DEFAULTS.messagesPerChatPerMinute,
        ),
        newUnknownChatsPerMinute: positiveInteger().default(
          STATIC_DEFAULTS.newUnknownChatsPerMinute,
        ),
        defaultRegion: z
          .string(expecting(REGION_EXPECTATION))
          .trim()
          .toUpperCase()
          .refine(isSupportedCountry, expecting(REGION_EXPECTATION))
          .optional(),
        maxConsecutiveErrors: positiveInteger().default(STATIC_DEFAULTS.maxConsecutiveErrors),
        turnTimeoutSeconds: positiveInteger().default(STATIC_DEFAULTS.turnTimeoutSeconds),
        shutdownGraceSeconds: wholeNumber().default(STATIC_DEFAULTS.shutdownGraceSeconds),
        registryBookkeepingDelaySeconds: wholeNumber().default(
          STATIC_DEFAULTS.registryBookkeepingDelaySeconds,
        ),
        logLevel: logLevelSchema.default(STATIC_DEFAULTS.logLevel),
        tiers: z
          .record(
            z.string().regex(TIER_NAME, expecting("a tier name of letters, digits, `-` and `_`")),
            tierSchema,
            expecting("an object of tier name to tier settings"),
          )
          .default({}),
        channels: object({
          http: httpSchema.prefault({}),
          imessage: imessage.prefault({}),
          signal: signalSchema.prefault({}),
        }).prefault({}),
        cluster: clusterSchema.prefault({}),
        database: databaseSchema.prefault({}),
      },
      expecting("a JSON object"),
    )
    .refine(unknownTierAgrees, {
      error: UNKNOWN_TIER_CONFLICT,
      path: ["tiers", "unknown", "respond"],
      params: { complete: true },
      // Run even when other keys are invalid, so every problem is listed at once.
      when: () => true,
    });

  return file.transform(({ tiers, maxLiveSessions, database, ...rest }, transform): Config => {
    const merged: Record<Tier, TierConfig> = { ...builtInTiers(rest.unknownSenders) };
    for (const [name, overrides] of Object.entries(tiers)) {
      // `hasOwn`, not `??`: a tier named `constructor` must not start from Object's.
      const base = Object.hasOwn(merged, name) ? merged[name] : undefined;
      merged[name] = { ...(base ?? newTierBase()), ...overrides };
    }
    const bound =
      maxLiveSessions ?? defaultMaxLiveSessions(context.totalMemoryBytes, rest.spareProcesses);
    const reserved = Object.values(merged).reduce(
      (total, tier) => total + (tier.reservedLiveSessions ?? 0),
      0,
    );
    // Unset, strangers may never hold every slot, unless the bound has no room for that.
    const asked = rest.reservedLiveSessionsForContacts;
    const forContacts = asked ?? (bound - reserved >= 2 ? DEFAULT_CONTACT_SLOTS : 0);
    if (reserved + forContacts >= bound) {
      const what =
        asked === undefined
          ? "The tiers' `reservedLiveSessions`"
          : "The tiers' `reservedLiveSessions` and `reservedLiveSessionsForContacts`";
      transform.issues.push({
        code: "custom",
        input: reserved + forContacts,
        path: asked === undefined ? ["tiers"] : ["reservedLiveSessionsForContacts"],
        params: { complete: true },
        message:
          `${what} add up to ${reserved + forContacts}, which leaves no live session ` +
          `for other chats: keep the sum below \`maxLiveSessions\` (${bound}), or raise it`,
      });
      return z.NEVER;
    }
    return {
      ...rest,
      maxLiveSessions: bound,
      reservedLiveSessionsForContacts: forContacts,
      tiers: merged,
      database: {
        url: database.url,
        nodeId: database.nodeId ?? defaultNodeId(context.hostName ?? "localhost", rest.port),
      },
    };
  });
}

/** `tiers.unknown.respond`, when set, must say the same as `unknownSenders`. */
function unknownTierAgrees(value: unknown): boolean {
  const unknownTier = property(property(value, "tiers"), "unknown");
  const respond = property(unknownTier, "respond");
  const policy = property(value, "unknownSenders");
  if (typeof respond !== "boolean" || (policy !== "ignore" && policy !== "respond")) return true;
  return respond === (policy === "respond");
}

function property(value: unknown, key: string): unknown {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

function quotedList(values: readonly string[]): string {
  const quoted = values.map((value) => JSON.stringify(value));
  if (quoted.length < 2) return quoted.join("");
  return `${quoted.slice(0, -1).join(", ")} or ${quoted.at(-1) ?? ""}`;
}
