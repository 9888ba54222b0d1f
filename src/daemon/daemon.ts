import { mkdir, readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { createAgentProcessFile } from "../agent/agent-processes.js";
import { agentChildEnv } from "../agent/child-env.js";
import { createClaudeSdkAgent } from "../agent/claude-sdk-agent.js";
import type { Channel } from "../channels/channel.js";
import {
  createImessageChannel,
  IMESSAGE_MAX_MESSAGE_LENGTH,
} from "../channels/imessage/imessage-channel.js";
import {
  createSignalChannel,
  SIGNAL_MAX_MESSAGE_LENGTH,
} from "../channels/signal/signal-channel.js";
import { loadOrCreateApiToken } from "../channels/http/api-token.js";
import { createApiEvents, createSignal } from "../channels/http/api-events.js";
import { createHttpApi } from "../channels/http/http-api.js";
import { createReplyWebhook } from "../channels/http/reply-webhook.js";
import { createHttpReplyChannel } from "../channels/http/http-reply-channel.js";
import { startHttpServer, type HttpServer } from "../channels/http/http-server.js";
import { loadConfig, type LoadedConfig } from "../config/load-config.js";
import { databasePassword } from "../config/database.js";
import type { Config } from "../config/schema.js";
import { systemClock, type Clock } from "../utils/clock.js";
import { describeError } from "../utils/errors.js";
import type { ChatId, SessionName } from "../utils/ids.js";
import { SessionManager } from "../core/session-manager.js";
import { createActivityFeed } from "../dashboard/activity-feed.js";
import { createDaemonContacts } from "../dashboard/daemon-contacts.js";
import { createDaemonDashboardSource } from "../dashboard/daemon-source.js";
import { createDashboardRoutes, withDashboard } from "../dashboard/dashboard-routes.js";
import { claudeConfigDir } from "../agent/claude-cli-layout.js";
import { loadContacts } from "../identity/contacts.js";
import { handlesOfPerson, peopleOf } from "../identity/person-handles.js";
import { mergePersonSessions } from "../core/person-sessions.js";
import { createLogRing } from "../logging/log-ring.js";
import { LOG_FILE_LIMITS } from "../logging/log-file.js";
import { createLogger, type Logger } from "../logging/logger.js";
import { startStandInModel, type StandInModel } from "../stand-in/model-server.js";
import { createMemoryChatOwnership } from "../store/memory-chat-ownership.js";
import { createPostgresChatOwnership } from "../store/postgres/postgres-chat-ownership.js";
import {
  openPostgresDatabase,
  type PostgresDatabase,
} from "../store/postgres/postgres-database.js";
import { createPostgresRegistryRows } from "../store/postgres/postgres-registry-rows.js";
import { createPostgresTranscriptStore } from "../store/postgres/postgres-transcript-store.js";
import { withMovedSessions } from "../store/moved-transcripts.js";
import { openRowRegistry } from "../store/row-registry.js";
import { createSessionFolders } from "../store/session-folders.js";
import { createSqliteActivityStore } from "../store/sqlite-activity-store.js";
import { openStateDatabase } from "../store/sqlite-database.js";
import { createSqliteRegistryRows } from "../store/sqlite-registry-rows.js";
import { createSqliteTranscriptStore } from "../store/sqlite-transcript-store.js";
import { createContactsHolder } from "./contacts-holder.js";
import { hasClaudeCredentials } from "./credentials.js";
import { composeHandoff } from "./handoff.js";
import { ReplySender } from "./reply-sender.js";
import { Inbox } from "./inbox.js";
import { createTranscriptFinder } from "./earlier-answer.js";
import { openSessionArchive } from "./session-archive.js";
import { catchUpAfterUncleanStop } from "./transcript-catch-up.js";
import { watchContactsFile } from "./contacts-reload.js";
import { acquireInstanceLock, type InstanceLock } from "./instance-lock.js";
import { createMetrics } from "./metrics.js";
import { startNodePresence, type NodePresence } from "./node-presence.js";
import { ChatRouter } from "../cluster/chat-router.js";
import type { LostLease } from "../cluster/lease-policy.js";
import { EVERY_NODE, sendWakeUp, WakeUpListener } from "../store/postgres/postgres-wake-ups.js";
import { chatKeyOf } from "./intake.js";
import { createSessionControl } from "./session-control.js";
import { createTierPolicy } from "./tier-policy.js";
import { openJournal } from "./open-journal.js";
import { createTurnCosts } from "./turn-costs.js";
import { DISPATCH_VERSION } from "./version.js";

export interface DaemonOptions {
  env: NodeJS.ProcessEnv;
  homeDir?: string;
  /**
   * Runs against the bundled offline stand-in model instead of Claude, answering every chat; no
   * channel that reaches people (iMessage) is on unless config.json turns it on by name.
   */
  demo: boolean;
  /** `process.platform`; tests pass "darwin" to see the channels chosen on a Mac. */
  platform?: NodeJS.Platform;
  logger?: Logger;
  clock?: Clock;
}

/** Where everything is, for the start banner (`cli/start-banner.ts`). */
export interface StartInfo {
  version: string;
  demo: boolean;
  home: string;
  /** The HTTP API's and dashboard's port; undefined when the HTTP channel is off. */
  port: number | undefined;
  /** The token file, or undefined when `DISPATCH_API_TOKEN` gives the token. */
  tokenFile: string | undefined;
  logFile: string;
  contacts: number;
  /** Whether strangers are answered (`unknownSenders`, or demo mode). */
  answersEveryone: boolean;
  channels: { name: string; on: boolean; note?: string }[];
}

export interface RunningDaemon {
  port: number;
  loaded: LoadedConfig;
  info: StartInfo;
  /** Stops taking messages, lets running turns finish (bounded), saves every session id. */
  stop(reason: string): Promise<void>;
}

/**
 * The composition root: the only place that knows every concrete class. Starts in dependency
 * order and, when a step fails, undoes the steps before it.
 */
export async function startDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  const clock = options.clock ?? systemClock;
  const homeDir = options.homeDir ?? os.homedir();
  const loaded = await loadConfig({
    env: options.env,
    homeDir,
    demo: options.demo,
    ...(options.platform ? { platform: options.platform } : {}),
  });
  const { paths } = loaded;
  const config = options.demo ? answerEveryone(loaded.config) : loaded.config;
  // Before the log file is opened in it: made here, the folder is private to the user.
  await mkdir(paths.stateDir, { recursive: true, mode: 0o700 });
  // The dashboard's Log view reads the daemon's recent lines from here.
  const logLines = createLogRing();
  logLines.addSecrets([
    options.env.ANTHROPIC_API_KEY,
    options.env.ANTHROPIC_AUTH_TOKEN,
    options.env.CLAUDE_CODE_OAUTH_TOKEN,
    options.env.DISPATCH_API_TOKEN,
    ...databaseSecrets(config.database.url),
  ]);
  const logger =
    options.logger ??
    createLogger({
      level: config.logLevel,
      pretty: process.stdout.isTTY,
      copyTo: logLines.stream,
      file: { path: paths.logFile, ...LOG_FILE_LIMITS },
    });
  const undo: (() => Promise<void>)[] = [];
  const rollback = async () => {
    for (const step of undo.reverse()) await step().catch(() => undefined);
  };

  try {
    const lock: InstanceLock = await acquireInstanceLock(paths.lockFile, {
      pid: process.pid,
      started_at: new Date(clock.now()).toISOString(),
      port: config.port,
    });
    // The lock file outlives a run that did not end cleanly; the next start then catches up the
    // transcript copy. Until this run has caught up, it keeps that for the next start: a start
    // that fails first leaves the lock behind instead of releasing it.
    let transcriptsCaughtUp = !lock.tookOverStale;
    const releaseLock = () => (transcriptsCaughtUp ? lock.release() : Promise.resolve());
    undo.push(releaseLock);

    const readContacts = () =>
      loadContacts(paths.contactsFile, {
        knownTiers: Object.keys(config.tiers),
        ...(config.defaultRegion ? { defaultRegion: config.defaultRegion } : {}),
      });
    // Held so that a change (from the dashboard, or an edit of the file) applies without a restart.
    const contacts = createContactsHolder(await readContacts());
    const channels: Channel[] = [];
    const channelStates: StartInfo["channels"] = [];
    let server: HttpServer | undefined;
    const database = openStateDatabase({ path: paths.journalFile, logger });
    // With a database URL, the journal, the registry and the transcript mirror live in PostgreSQL
    // (a cluster's shared state, docs/cluster.md); the dashboard's activity stays in journal.db.
    const shared = await openSharedDatabase(config, logger).catch((error: unknown) => {
      database.close();
      throw error;
    });
    const journal = openJournal({ shared, stateDatabase: database, clock });
    undo.push(() => journal.close()); // closes the state database too
    if (shared) undo.push(() => shared.close());
    const transcripts = shared
      ? createPostgresTranscriptStore({ database: shared, clock })
      : createSqliteTranscriptStore({ db: database, clock });
    const registry = await openRowRegistry({
      rows: shared
        ? createPostgresRegistryRows({ database: shared, clock })
        : createSqliteRegistryRows({ db: database, clock }),
      file: paths.registryFile,
      logger,
      clock,
      bookkeepingDelayMs: config.registryBookkeepingDelaySeconds * 1000,
    });
    undo.push(() => registry.close());
    const pruned = await journal.prune();
    if (pruned.inbound > 0) logger.info("journal-prune", { ...pruned });
    const agentProcesses = createAgentProcessFile(
      path.join(paths.stateDir, "agent-processes.json"),
      logger,
    );
    await agentProcesses.reapOrphans();
    const { token, source: tokenSource } = await loadOrCreateApiToken(
      paths.apiTokenFile,
      options.env.DISPATCH_API_TOKEN,
      { logger },
    );
    logLines.addSecrets([token]);

    let agentEnv = agentChildEnv({ ...options.env, HOME: options.env.HOME ?? homeDir });
    let standIn: StandInModel | undefined;
    if (options.demo) {
      standIn = await startStandInModel();
      undo.push(() => standIn!.close());
      agentEnv = {
        ...agentEnv,
        ANTHROPIC_BASE_URL: standIn.url,
        ANTHROPIC_API_KEY: "demo-stand-in",
      };
      logger.warn("demo-mode", {
        model: standIn.url,
        note:
          "replies come from the bundled offline stand-in model, not from Claude; every chat is " +
          "answered; iMessage stays off unless config.json sets channels.imessage.enabled",
      });
    }
    const claudeDir = claudeConfigDir(agentEnv, homeDir);
    // Forgotten sessions' files go here; a forget a crash cut short is finished before anything
    // reads the registry or the transcript copy.
    const archive = await openSessionArchive({
      archiveDir: path.join(paths.stateDir, "forgotten"),
      transcriptsDir: config.transcriptsDir,
      claudeDir,
      registry,
      transcripts,
      clock,
      logger,
    });
    await archive.finishPending();
    const hasCredentials = options.demo || hasClaudeCredentials(agentEnv, homeDir);
    if (!hasCredentials)
      logger.warn("credentials-missing", { fix: "set ANTHROPIC_API_KEY or run `npm run demo`" });

    const metrics = createMetrics();
    const agent = createClaudeSdkAgent({
      logger,
      env: agentEnv,
      processes: agentProcesses.tracker,
      // A session resumed on another node (or from a moved folder) finds its transcript.
      transcripts: withMovedSessions(transcripts),
      spares: config.spareProcesses,
      // Spares are prewarmed with one tier's tools; most new chats are favorites.
      spareAllowedTools: config.tiers.favorite?.allowedTools ?? [],
      spareLimits: {
        maxTurns: config.tiers.favorite?.maxTurns,
        maxBudgetUsd: config.tiers.favorite?.maxBudgetUsd,
      },
    });
    undo.push(() => agent.close());
    // The dashboard's Health view, fed by the events below and kept in the state database, so a
    // restart does not wipe it; each turn's cost, in the journal.
    const activity = createActivityFeed({
      clock,
      store: createSqliteActivityStore({ db: database }),
      logger,
    });
    if (lock.tookOverStale) {
      activity.daemonRestarted(
        "dispatch started again after it stopped without shutting down (killed or crashed); messages it had not answered are replayed",
      );
    }
    const turnCosts = createTurnCosts({ journal, clock, logger });
    await turnCosts.load();
    // The way out: each turn's reply, recorded against the journal rows it answers, to the
    // channel of its chat (channels are added below, before any message comes in).
    // With a database, this daemon is a node of a cluster (docs/cluster.md): sessions run where
    // their lease is, and the router says where that is. Embedded, it is the only node.
    const nodeId = config.database.nodeId;
    const ownership = shared
      ? createPostgresChatOwnership({ database: shared, clock })
      : createMemoryChatOwnership({ clock });
    const folders = createSessionFolders(config.transcriptsDir, {
      claudeDir,
      isArchived: (sessionName) => archive.holds(sessionName),
    });
    // Set once the node has joined (below), before any message can come in.
    const self: { node?: NodePresence } = {};
    const late: { inbox?: Inbox; manager?: SessionManager } = {};
    const router: ChatRouter | undefined = shared
      ? new ChatRouter({
          nodeId,
          leaseMs: config.cluster.leaseSeconds * 1000,
          ownership,
          held: {
            hold: (lease) => self.node!.leases.hold(lease),
            holds: (sessionName) => self.node?.leases.holds(sessionName) ?? false,
          },
          registry,
          journal,
          clock,
          logger,
          chatKeyOf: (chatId) => chatKeyOf(chatId, config),
          ...(config.sessionScope === "person"
            ? { personOf: (chatId: ChatId) => handlesOfPerson(contacts, chatId) }
            : {}),
          nameInUse: (name) => folders.isInUse(name),
          wake: (wakeUp) =>
            sendWakeUp(
              shared.pool,
              wakeUp.kind === "reply" ? { ...wakeUp, node: EVERY_NODE } : wakeUp,
            ),
          sendUnsent: (options): Promise<void> => replies.sendUnsent(options),
          replay: (include, options) => late.inbox!.replayPending(include, options),
          waitingFor: () => httpReplies.waitingFor(),
          answerWaiting: (chatId, answer, agentSessionId) =>
            httpReplies.answer?.({
              chatId,
              answers: [answer.id],
              agentSessionId,
              text: answer.reply.length > 0 ? answer.reply.join("\n\n") : null,
              ...(answer.failure !== undefined
                ? { failure: answer.failure }
                : answer.status === "rejected"
                  ? { failure: "the message was refused on the node that answers its chat" }
                  : {}),
            }),
          relinquish: (chatId) => late.manager!.relinquish(chatId),
          stopping: () => late.inbox?.shuttingDown() ?? false,
        })
      : undefined;
    const replies = new ReplySender({
      journal,
      registry,
      metrics,
      clock,
      logger,
      ...(router
        ? {
            cluster: {
              fenceOf: (chatId: ChatId) => router.fenceOf(chatId),
              replyRecorded: (chatId: ChatId, ids: readonly number[]) =>
                router.replyRecorded(chatId, ids),
              handOff: (channel: string) => router.handOff(channel),
              maxLengthOf: (channel: string) => CHANNEL_MAX_MESSAGE_LENGTHS[channel],
            },
          }
        : {}),
    });
    // HTTP clients that wait get their reply from that path too, by the journal ids it answers;
    // the others from the reply webhook (retried from the outbox) and `GET /v1/events`.
    const replyRecorded = createSignal();
    const webhookConfig = config.channels.http.webhook;
    const httpReplies = createHttpReplyChannel({
      logger,
      ...(webhookConfig === undefined
        ? {}
        : {
            webhook: createReplyWebhook({
              url: webhookConfig.url,
              secret: webhookConfig.secret,
              timeoutMs: webhookConfig.timeoutSeconds * 1000,
              now: () => clock.now(),
            }),
            replyEvent: (outboxId) => journal.replyEvent(outboxId),
          }),
      onReplyRecorded: () => replyRecorded.notify(),
    });
    const manager: SessionManager = new SessionManager(
      {
        agent,
        registry,
        folders,
        archive,
        clock,
        logger,
        policyFor: createTierPolicy(config),
        onReply: (reply): void => {
          // First: nothing after it may keep a reply from going out. Neither rejects.
          void replies.onReply(reply);
          void turnCosts.record(reply);
          activity.turnEnded(reply);
        },
        onSessionEvent: (event) => {
          if (event.type === "replace") metrics.sessionsReplaced.inc({ reason: event.reason });
          activity.sessionEvent(event);
        },
        sendInterim: replies.sendInterim,
        ...(config.sessionScope === "person"
          ? { personOf: (chatId: ChatId) => handlesOfPerson(contacts, chatId) }
          : {}),
        handoffFor: async (sessionId, reason) =>
          composeHandoff(await transcripts.recentEntries(sessionId, 200), reason),
        copiedMessagesOf: (sessionId) => transcripts.messageCount(sessionId),
      },
      {
        healthCheckIntervalMs: config.healthCheckIntervalSeconds * 1000,
        idleTimeoutMs: config.idleTimeoutSeconds * 1000,
        maxConsecutiveErrors: config.maxConsecutiveErrors,
        turnTimeoutMs: config.turnTimeoutSeconds * 1000,
        maxLiveSessions: config.maxLiveSessions,
        reservedLiveSessions: Object.fromEntries(
          Object.entries(config.tiers).map(([tier, settings]) => [
            tier,
            settings.reservedLiveSessions ?? 0,
          ]),
        ),
        reservedLiveSessionsForContacts: config.reservedLiveSessionsForContacts,
      },
    );
    // The way in, and the control plane the API and the dashboard use.
    const inbox = new Inbox({
      manager,
      registry,
      contacts,
      config,
      metrics,
      clock,
      logger,
      journal,
      hasCredentials,
      onAccepted: (chatId, messageId) => activity.messageAccepted(chatId, messageId),
      findInTranscript: createTranscriptFinder({ registry, transcripts }),
      onRecoveredReply: replies.onReply,
      answeredInRequest: httpReplies,
      ...(router ? { router } : {}),
    });
    late.inbox = inbox;
    late.manager = manager;
    const control = {
      ...createSessionControl({
        manager,
        registry,
        journal,
        config,
        metrics,
        clock,
        version: DISPATCH_VERSION,
        demo: options.demo,
        shuttingDown: inbox.shuttingDown,
        nodes: {
          self: nodeId,
          ownerOf: (sessionName) => self.node?.ownerOf(sessionName) ?? null,
          listNodes: () => self.node?.listNodes() ?? Promise.resolve([]),
        },
      }),
      submit: inbox.submit,
    };
    // Before any session can resume: what CLIs wrote after a crash must be in our copy first.
    // After a clean stop there is nothing to catch up (test/e2e/transcript-catch-up.test.ts).
    const caughtUp = await catchUpAfterUncleanStop({
      registry,
      transcripts,
      transcriptsDir: config.transcriptsDir,
      claudeDir: claudeConfigDir(agentEnv, homeDir),
      logger,
      uncleanStop: lock.tookOverStale,
    });
    // A session whose catch-up failed is tried again at the next start.
    transcriptsCaughtUp = caughtUp === undefined || caughtUp.failed === 0;
    // One session per person: a registry from before it (or from `sessionScope: "chat"`) may
    // hold one person's chats in several sessions; they join the most recently active one. After
    // the catch-up, so the sessions they leave have their copies complete.
    if (config.sessionScope === "person") {
      mergePersonSessions(registry, peopleOf(contacts), new Date(clock.now()), logger);
      await registry.flush();
    }
    manager.startup();
    undo.push(() => manager.shutdown());
    // Edits to contacts.json apply without a restart, whole or not at all.
    const contactsReload = watchContactsFile({
      file: paths.contactsFile,
      load: readContacts,
      apply: (book) => contacts.replace(book),
      logger,
    });
    undo.push(() => contactsReload.close());
    // This daemon as a node: its row written (a failure stops the start: it cannot join), its
    // leases renewed from now on. Before the HTTP API, which may take a message for any chat.
    const node = await startNodePresence({
      ownership,
      nodeId,
      address: () => `http://127.0.0.1:${server?.port ?? config.port}`,
      channels: () => channelStates.filter((channel) => channel.on).map((channel) => channel.name),
      pool: () => manager.pool(),
      state: () => (inbox.shuttingDown() ? "draining" : "serving"),
      chatsOf: () =>
        router ? ownership.leaseCounts() : Promise.resolve(new Map([[nodeId, registry.size]])),
      ...(router
        ? {
            ownerOf: (sessionName: SessionName) => router.ownerOf(sessionName),
            onLost: (lost: LostLease) => void router.lost(lost.lease),
          }
        : {}),
      leaseMs: config.cluster.leaseSeconds * 1000,
      clock,
      logger,
    });
    self.node = node;
    undo.push(() => node.leave());

    if (config.channels.http.enabled) {
      // The dashboard (issue 7) shares the API's server and token: `/`, `/assets/*`, `/v1/dashboard/*`.
      const dashboard = createDaemonDashboardSource({
        dispatcher: control,
        manager,
        activity,
        costs: turnCosts,
        transcriptsDir: config.transcriptsDir,
        claudeDir: claudeConfigDir(agentEnv, homeDir),
        transcriptMirror: transcripts,
        demo: options.demo,
        spareProcesses: config.spareProcesses,
        sparesReady: () => agent.sparesReady,
        logger,
      });
      undo.push(() => Promise.resolve(dashboard.close()));
      const dashboardContacts = createDaemonContacts({
        path: paths.contactsFile,
        config,
        listSessions: () => control.listSessions(),
        apply: (book) => contacts.replace(book),
        logger,
      });
      server = await startHttpServer({
        app: withDashboard(
          createDashboardRoutes({
            source: dashboard,
            contacts: dashboardContacts,
            log: logLines,
            token,
            logger,
          }),
          createHttpApi({
            control,
            token,
            logger,
            events: createApiEvents({
              replies: {
                after: (afterId, limit) => journal.replyEventsAfter("http", afterId, limit),
                lastId: () => journal.lastReplyEventId("http"),
              },
              replyRecorded,
              sessions: dashboard,
            }),
          }),
        ),
        port: config.port,
        allowedHosts: config.channels.http.allowedHosts,
        limits: {
          headersTimeoutMs: config.channels.http.headersTimeoutSeconds * 1000,
          requestTimeoutMs: config.channels.http.requestTimeoutSeconds * 1000,
          keepAliveTimeoutMs: config.channels.http.keepAliveTimeoutSeconds * 1000,
          maxConnections: config.channels.http.maxConnections,
        },
        logger: logger.child({ channel: "http" }),
      });
      undo.push(() => server!.close());
      replies.addChannel(httpReplies);
      channelStates.push({ name: "http", on: true });
    } else {
      channelStates.push({ name: "http", on: false, note: "channels.http.enabled is false" });
    }
    if (!config.channels.imessage.enabled) {
      channelStates.push({
        name: "imessage",
        on: false,
        note: process.platform === "darwin" ? "channels.imessage.enabled is false" : "macOS only",
      });
    }
    if (config.channels.imessage.enabled) {
      channels.push(
        createImessageChannel({
          config: config.channels.imessage,
          cursor: await journal.cursor("imessage"),
          logger: logger.child({ channel: "imessage" }),
          clock,
          onCursor: (cursor) => journal.setCursor("imessage", cursor),
        }),
      );
    }
    if (config.channels.signal.enabled) {
      channels.push(
        createSignalChannel({
          config: config.channels.signal,
          logger: logger.child({ channel: "signal" }),
          clock,
        }),
      );
    } else {
      channelStates.push({ name: "signal", on: false });
    }
    for (const channel of channels) {
      replies.addChannel(channel);
      try {
        await channel.start(inbox.sink);
      } catch (error) {
        // On by default on macOS, iMessage stays off when chat.db cannot be read, unless the
        // config asked for it by name: then the start fails with the channel's own advice.
        if (channel.name !== "imessage" || (await namesImessageExplicitly(paths.configFile)))
          throw error;
        logger.warn("channel-off", { channel: channel.name, cause: describeError(error) });
        channelStates.push({
          name: channel.name,
          on: false,
          note: "cannot read chat.db; `dispatch doctor` says why",
        });
        continue;
      }
      undo.push(() => channel.stop());
      channelStates.push({ name: channel.name, on: true });
    }
    // Its channels are up: the row says so before anything is placed by it.
    await node.refresh();
    // A cluster's node hears of messages for its sessions and of replies to its requests.
    const wakeUps =
      router && config.database.url !== undefined
        ? new WakeUpListener({
            url: config.database.url,
            nodeId,
            logger,
            clock,
            onWakeUp: (wakeUp) => router.onWakeUp(wakeUp),
            catchUp: () => router.sweep(),
          })
        : undefined;
    if (wakeUps) {
      await wakeUps.start();
      undo.push(() => wakeUps.stop());
    }
    // What a crash left: replies recorded but not confirmed sent, messages never answered.
    // In a cluster, replies of the HTTP channel are each node's own to send (the others may be
    // sending theirs now), and a channel this node lacks is another node's.
    await replies.resendAfterRestart(
      router
        ? {
            include: (row) =>
              row.channel !== "http" && channels.some((channel) => channel.name === row.channel),
          }
        : {},
    );
    let replayed = 0;
    let stopSweeping = (): void => undefined;
    if (router) {
      // The first sweep takes back this node's sessions and takes over dead nodes' ones; the
      // sweep goes on every second.
      await router.sweep();
      stopSweeping = clock.every(CLUSTER_SWEEP_MS, () => void router.sweep());
      undo.push(() => Promise.resolve(stopSweeping()));
    } else {
      replayed = await inbox.replayPending();
    }

    logger.info("daemon-start", {
      version: DISPATCH_VERSION,
      pid: process.pid,
      home: paths.home,
      port: server?.port,
      node: node.nodeId,
      registered: registry.size,
      database: shared?.target ?? "embedded",
      contacts: contacts.size,
      replayed,
      demo: options.demo,
    });

    let stopping: Promise<void> | undefined;
    const stop = (reason: string) => {
      stopping ??= (async () => {
        logger.info("daemon-stop", { reason });
        // Channels first: a message a pushing channel (Signal) takes until it stops is still
        // recorded (the inbox refuses new ones unrecorded once it shuts down).
        for (const channel of channels) await channel.stop().catch(() => undefined);
        inbox.beginShutdown();
        await contactsReload.close();
        const drained = await manager.drain(config.shutdownGraceSeconds * 1000);
        if (!drained)
          logger.warn("shutdown-grace-expired", {
            unanswered: manager.unansweredCount(),
          });
        await server?.close();
        await manager.shutdown();
        stopSweeping();
        await router?.sweep();
        await wakeUps?.stop();
        // Its sessions stopped: the row says `gone` and its chats are free for other nodes.
        await node
          .leave()
          .catch((error: unknown) =>
            logger.warn("node-leave-fail", { cause: describeError(error) }),
          );
        await agent.close();
        await registry.close();
        await shared?.close();
        await agentProcesses.flush();
        await journal.close();
        await standIn?.close();
        await releaseLock();
        logger.info("daemon-stopped", {});
      })();
      return stopping;
    };
    const info: StartInfo = {
      version: DISPATCH_VERSION,
      demo: options.demo,
      home: paths.home,
      port: server?.port,
      tokenFile: tokenSource === "environment" ? undefined : paths.apiTokenFile,
      logFile: paths.logFile,
      contacts: contacts.size,
      answersEveryone: config.unknownSenders === "respond",
      channels: channelStates,
    };
    return { port: server?.port ?? 0, loaded, info, stop };
  } catch (error) {
    logger.error("daemon-start-failed", { cause: describeError(error) });
    await rollback();
    throw error;
  }
}

/** The channels' message limits, for a reply split on a node that does not have the channel. */
const CHANNEL_MAX_MESSAGE_LENGTHS: Record<string, number> = {
  imessage: IMESSAGE_MAX_MESSAGE_LENGTH,
  signal: SIGNAL_MAX_MESSAGE_LENGTH,
};

/** How often a cluster's node sweeps (`ChatRouter.sweep`): the failover's granularity. */
const CLUSTER_SWEEP_MS = 1_000;

/** The PostgreSQL database `database.url` names, opened and migrated; undefined without one. */
async function openSharedDatabase(
  config: Config,
  logger: Logger,
): Promise<PostgresDatabase | undefined> {
  const url = config.database.url;
  if (url === undefined) return undefined;
  return openPostgresDatabase({ url, logger });
}

/** A database URL's password, as written and decoded, for the log's redaction. */
function databaseSecrets(url: string | undefined): string[] {
  const decoded = databasePassword(url);
  if (decoded === undefined || url === undefined) return [];
  return [decoded, new URL(url).password];
}

/** Whether config.json sets `channels.imessage.enabled` itself (rather than taking the default). */
async function namesImessageExplicitly(configFile: string): Promise<boolean> {
  try {
    const json = JSON.parse(await readFile(configFile, "utf8")) as {
      channels?: { imessage?: { enabled?: unknown } };
    };
    return json.channels?.imessage?.enabled === true;
  } catch {
    return false;
  }
}

/** Demo mode answers every chat, so a newcomer can try it without writing contacts.json. */
function answerEveryone(config: Config): Config {
  const unknown = config.tiers.unknown!;
  return {
    ...config,
    unknownSenders: "respond",
    tiers: { ...config.tiers, unknown: { ...unknown, respond: true } },
  };
}
