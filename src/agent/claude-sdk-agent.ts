/**
 * The Claude Agent SDK adapter of the agent port: a new conversation starts on a prewarmed spare
 * when one of its profile is parked (`sdk-spare.ts`), else cold (`sdk-conversation.ts`). The
 * `agent/sdk-*.ts` modules and `cli-process.ts` are the only ones that import the SDK or start
 * the CLI: the rest of the code speaks the port's types.
 */
import type { SessionStore } from "@anthropic-ai/claude-agent-sdk";
import { describeError } from "../utils/errors.js";
import type { Logger } from "../logging/logger.js";
import type { AgentPort } from "./port.js";
import type { AgentProcessTracker } from "./agent-processes.js";
import { createSparePool, type SparePool } from "./spare-processes.js";
import { startConversation } from "./sdk-conversation.js";
import type { TurnLimits } from "./sdk-options.js";
import {
  makeProfile,
  prewarmSpare,
  profileOf,
  startFromSpare,
  type AgentProfile,
  type Spare,
} from "./sdk-spare.js";

export { SEND_MESSAGE_TOOL } from "./sdk-options.js";

export interface ClaudeSdkAgentDeps {
  logger: Logger;
  /** The whole environment of each CLI child (the SDK does not merge it with ours). */
  env: Record<string, string | undefined>;
  /**
   * Days the CLI keeps transcripts before its cleanup deletes them. Resume needs the
   * transcript, so dispatch raises the CLI's default of 30.
   */
  transcriptRetentionDays?: number;
  /**
   * Prewarmed CLI processes kept ready for new conversations (config `spareProcesses`), about
   * 200 MB each. Default 0: none. With spares, the owner must `close()` the agent at shutdown.
   */
  spares?: number;
  /**
   * The `allowedTools` of the tier to prewarm spares for before the first new conversation;
   * after it, spares follow the tools of the most recent new conversation.
   */
  spareAllowedTools?: readonly string[];
  /** The turn limits that go with `spareAllowedTools` (a spare's limits are fixed at prewarm). */
  spareLimits?: TurnLimits;
  /** Told of every agent process started and ended, so a crashed daemon's orphans can be found. */
  processes?: AgentProcessTracker;
  /**
   * Our own copy of every session's transcript (the SDK's `sessionStore`): a resume loads from
   * it, so a session keeps its context even when `~/.claude` was wiped or swept.
   */
  transcripts?: SessionStore;
}

/** The SDK adapter: the port, plus the spare processes its owner ends at shutdown. */
export interface ClaudeSdkAgent extends AgentPort {
  /** Ends the spare processes; resolves once they have exited. Conversations end on their own. */
  close(): Promise<void>;
  /** Spares parked and ready for a new conversation. */
  readonly sparesReady: number;
}

export function createClaudeSdkAgent(deps: ClaudeSdkAgentDeps): ClaudeSdkAgent {
  const spares: SparePool<AgentProfile, Spare> = createSparePool({
    size: deps.spares ?? 0,
    prewarm: (profile, signal) => prewarmSpare(deps, profile, signal),
    logger: deps.logger,
    ...(deps.spareAllowedTools
      ? {
          initialProfile: makeProfile(
            deps.spareAllowedTools,
            [],
            true,
            true,
            deps.spareLimits ?? {},
          ),
        }
      : {}),
  });
  return {
    start(options) {
      // A claim cannot resume. `startup()` would not help a resume either: started here, it
      // measured no faster than `query()`, which already overlaps the spawn with the message.
      const spare = options.resume ? undefined : spares.take(profileOf(options));
      if (spare) {
        try {
          return startFromSpare(deps, options, spare);
        } catch (error) {
          // The spare exited between take and claim.
          deps.logger.warn("spare-claim-failed", { cause: describeError(error) });
          void spare.close();
        }
      }
      return startConversation(deps, options);
    },
    close: () => spares.close(),
    get sparesReady() {
      return spares.ready;
    },
  };
}
