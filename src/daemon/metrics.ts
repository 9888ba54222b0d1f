import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** The daemon's Prometheus metrics, served at `GET /metrics`. */
export function createMetrics() {
  const registry = new Registry();
  const metrics = {
    registry,
    messagesReceived: new Counter({
      name: "dispatch_messages_received_total",
      help: "Messages taken in, by channel",
      labelNames: ["channel"] as const,
      registers: [registry],
    }),
    messagesRejected: new Counter({
      name: "dispatch_messages_rejected_total",
      help: "Messages refused, by reason",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    turns: new Counter({
      name: "dispatch_turns_total",
      help: "Agent turns finished, by outcome",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    repliesSent: new Counter({
      name: "dispatch_reply_parts_sent_total",
      help: "Reply parts sent, by channel and outcome",
      labelNames: ["channel", "outcome"] as const,
      registers: [registry],
    }),
    turnDuration: new Histogram({
      name: "dispatch_turn_duration_seconds",
      help: "Agent turn duration as the agent reports it",
      buckets: [0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300],
      registers: [registry],
    }),
    sessionsLive: new Gauge({
      name: "dispatch_sessions_live",
      help: "Sessions holding a live agent process",
      registers: [registry],
    }),
    poolBound: new Gauge({
      name: "dispatch_pool_bound",
      help: "maxLiveSessions: the most sessions that may hold a live agent process",
      registers: [registry],
    }),
    poolWaiting: new Gauge({
      name: "dispatch_pool_waiting",
      help: "Chats waiting for a live-session slot",
      registers: [registry],
    }),
    poolEvictions: new Gauge({
      name: "dispatch_pool_evictions",
      help: "Idle sessions stopped to make room since the daemon started",
      registers: [registry],
    }),
    messagesQueued: new Gauge({
      name: "dispatch_messages_queued",
      help: "Messages delivered and not yet answered",
      registers: [registry],
    }),
    sessionsReplaced: new Counter({
      name: "dispatch_sessions_replaced_total",
      help: "Sessions replaced by a fresh one, by reason (history-missing: a resume lost its history and was rebuilt from dispatch's copy)",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    sessionsRegistered: new Gauge({
      name: "dispatch_sessions_registered",
      help: "Chats in the registry",
      registers: [registry],
    }),
  };
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
