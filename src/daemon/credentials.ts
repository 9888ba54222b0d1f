import { existsSync } from "node:fs";
import { claudeCredentialsFile } from "../agent/claude-cli-layout.js";

/** Environment variables the Claude CLI takes credentials from. */
export const CREDENTIAL_VARIABLES = [
  "ANTHROPIC_API_KEY",
  "ANTHROPIC_AUTH_TOKEN",
  "CLAUDE_CODE_OAUTH_TOKEN",
] as const;

/**
 * Whether the Claude CLI will find credentials: an API key or token in the environment, a
 * third-party provider switch, or a `claude login` in `~/.claude`. On macOS `claude login`
 * keeps them in the Keychain, which cannot be checked from here: there the answer is yes, and a
 * missing login shows up as the agent's own error on the first turn.
 */
export function hasClaudeCredentials(
  env: NodeJS.ProcessEnv,
  homeDir: string,
  platform: NodeJS.Platform = process.platform,
): boolean {
  if (CREDENTIAL_VARIABLES.some((name) => Boolean(env[name]?.trim()))) return true;
  if (env.CLAUDE_CODE_USE_BEDROCK === "1" || env.CLAUDE_CODE_USE_VERTEX === "1") return true;
  if (platform === "darwin") return true;
  return existsSync(claudeCredentialsFile(homeDir));
}

export const NO_CREDENTIALS_MESSAGE =
  "No Claude credentials found: set ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN or " +
  "CLAUDE_CODE_OAUTH_TOKEN) in the daemon's environment, or run `claude login`, then restart " +
  "dispatch. To try dispatch without credentials, run `npm run demo` (an offline stand-in model).";
