/**
 * The environment of each Claude CLI child. The SDK replaces the child's environment instead of
 * merging it, and a contact's agent should not see the daemon's other secrets: pass along only
 * what the CLI needs.
 */
const PASSED_NAMES = new Set([
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "SHELL",
  "LANG",
  "LC_ALL",
  "TMPDIR",
  "TZ",
]);
const PASSED_PREFIXES = [
  "ANTHROPIC_",
  "CLAUDE_",
  "AWS_",
  "GOOGLE_",
  "VERTEX_",
  "HTTP_PROXY",
  "HTTPS_PROXY",
  "NO_PROXY",
];

export function agentChildEnv(source: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined) continue;
    if (PASSED_NAMES.has(name) || PASSED_PREFIXES.some((prefix) => name.startsWith(prefix))) {
      env[name] = value;
    }
  }
  // Off whatever the daemon's own environment says. The CLI keys its auto-memory folder by the
  // git root, so with a home kept in git every contact's agent shared one `MEMORY.md` (in its
  // prompt, and readable past a tier's folder limit); each chat keeps its context in its own
  // session instead. Its git context would tell every contact the home repository's status and
  // commits.
  env.CLAUDE_CODE_DISABLE_AUTO_MEMORY = "1";
  env.CLAUDE_CODE_DISABLE_GIT_INSTRUCTIONS = "1";
  // No telemetry or update checks from a daemon's children.
  env.DISABLE_TELEMETRY ??= "1";
  env.DISABLE_AUTOUPDATER ??= "1";
  env.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC ??= "1";
  env.CLAUDE_AGENT_SDK_CLIENT_APP ??= "dispatch/0.1.0";
  return env;
}
