/**
 * Permission rules that keep an agent's file tools inside its own folder. A bare `Read` in
 * `allowedTools` lets the CLI read (and `Grep`/`Glob` search) any path; a path-scoped rule
 * (`Read(//abs/folder/**)`) approves the folder alone and, in `dontAsk` mode, denies the rest.
 * A tier with an unrestricted shell gains nothing from this (the shell reads anything), so
 * callers confine every tier but those.
 */
const READ_TOOLS = new Set(["Read", "Glob", "Grep"]);
const EDIT_TOOLS = new Set(["Edit", "Write", "MultiEdit", "NotebookEdit"]);

export function confineFileTools(allowedTools: readonly string[], folder: string): string[] {
  if (!folder.startsWith("/"))
    throw new Error(`confineFileTools: folder must be absolute, got ${folder}`);
  // "//" starts an absolute path in a permission rule; a single "/" would be relative to settings.
  const scope = `/${folder.replace(/\/+$/, "")}/**`;
  const rules = allowedTools.map((name) => {
    if (READ_TOOLS.has(name)) return `Read(${scope})`;
    if (EDIT_TOOLS.has(name)) return `Edit(${scope})`;
    return name;
  });
  return [...new Set(rules)];
}

/**
 * Whether a tool list gives the agent an unrestricted shell (`Bash`, or `Bash(*)`), which no file
 * rule can confine. A narrow rule (`Bash(git status:*)`) is no such shell: its tier keeps the
 * folder limit, and its commands are held to the rules (`shell-rules.ts`).
 */
export function grantsUnrestrictedShell(allowedTools: readonly string[]): boolean {
  return allowedTools.some((name) => name === "Bash" || /^Bash\(\s*\*\s*\)$/.test(name));
}

/** The patterns of a tool list's narrow shell rules: `Bash(git status:*)` -> `git status:*`. */
export function narrowShellRules(allowedTools: readonly string[]): string[] {
  if (grantsUnrestrictedShell(allowedTools)) return [];
  // An empty rule (`Bash()`) is kept: it matches no command, so the guard refuses them all.
  const rules = allowedTools.flatMap((name) => {
    const pattern = /^Bash\((.*)\)$/s.exec(name)?.[1];
    return pattern === undefined ? [] : [pattern.trim()];
  });
  return [...new Set(rules)].sort();
}
