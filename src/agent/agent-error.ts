import { DispatchError } from "../utils/errors.js";

export type AgentErrorCode =
  /** The resume id is unknown to the agent (startup failure `resume_target_not_found`). */
  | "agent_session_not_found"
  /** The agent process exited or its stream broke. */
  | "agent_process_failed"
  /** The conversation overflowed the model's context window. */
  | "agent_prompt_too_long";

/** A failure of the agent process, sorted into what the core branches on. */
export class AgentError extends DispatchError {
  declare readonly code: AgentErrorCode;

  constructor(code: AgentErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "AgentError";
  }
}
