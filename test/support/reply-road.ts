import { createHttpReplyChannel } from "../../src/channels/http/http-reply-channel.js";
import type { Clock } from "../../src/utils/clock.js";
import { createMetrics } from "../../src/daemon/metrics.js";
import { ReplySender } from "../../src/daemon/reply-sender.js";
import type { TurnReply } from "../../src/core/session.js";
import type { Logger } from "../../src/logging/logger.js";
import type { Journal } from "../../src/store/journal.js";
import type { Registry } from "../../src/store/registry.js";

/**
 * The daemon's reply path for tests of the inbox: the real reply sender with the HTTP channel,
 * whose waiting requests it serves. Wire `onReply` into the session manager and
 * `answeredInRequest` into the inbox.
 */
export function createReplyRoad(deps: {
  journal: Journal;
  registry: Registry;
  clock: Clock;
  logger: Logger;
}) {
  const http = createHttpReplyChannel({ logger: deps.logger });
  const sender = new ReplySender({ ...deps, metrics: createMetrics() });
  sender.addChannel(http);
  return {
    /** For the session manager, which does not wait. */
    onReply: (reply: TurnReply): void => void sender.onReply(reply),
    /** Resolves once the reply is recorded. */
    recordReply: sender.onReply,
    answeredInRequest: http,
  };
}
