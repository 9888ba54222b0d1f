/**
 * The crash loop's result as the table `npm run soak` prints and `docs/guarantees.md` quotes, for
 * one daemon and for a cluster.
 */
import type { ClusterCrashLoopResult } from "./cluster-crash-loop.js";
import type { CrashLoopDiagnostics, CrashLoopResult } from "./crash-loop.js";
import { median } from "./failover-times.js";
import { passed, type Verdict } from "./judge.js";

export function formatReport(result: CrashLoopResult): string {
  const { verdict } = result;
  const lines = [
    `crash loop, seed ${result.seed}: ${result.contacts} contacts, ${result.restarts} SIGKILL restarts`,
    "",
    "| sent | answered | lost | duplicated | restarts | seconds |",
    "| ---: | ---: | ---: | ---: | ---: | ---: |",
    `| ${verdict.sent} | ${verdict.answered} | ${verdict.lost} | ${verdict.duplicated} | ${result.restarts} | ${result.seconds} |`,
  ];
  const kept = result.home ? [`home kept at ${result.home}`] : [];
  return [...lines, ...details(verdict, result.diagnostics, kept)].join("\n");
}

export function formatClusterReport(result: ClusterCrashLoopResult): string {
  const { verdict, failoverMs } = result;
  const seconds = (ms: number | undefined) =>
    ms === undefined ? "-" : `${(ms / 1000).toFixed(1)} s`;
  const longest = failoverMs.length === 0 ? undefined : Math.max(...failoverMs);
  const lines = [
    `cluster crash loop, seed ${result.seed}: ${result.nodes} nodes, ${result.contacts} contacts, ` +
      `${result.kills.length} node kills (kill -9 of a node's process group)`,
    "",
    "| sent | answered | lost | duplicated | node kills | failover median | failover max | seconds |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    `| ${verdict.sent} | ${verdict.answered} | ${verdict.lost} | ${verdict.duplicated} | ` +
      `${result.kills.length} | ${seconds(median(failoverMs))} | ${seconds(longest)} | ${result.seconds} |`,
    "",
    `failover: ${failoverMs.length} sessions taken over after the kills of ` +
      `${result.kills.map((kill) => `${kill.node} (${kill.sessions} sessions)`).join(", ")}; ` +
      "each from the kill to the session-take-over line of the node that took it",
  ];
  return [...lines, ...details(verdict, result.diagnostics)].join("\n");
}

/** The diagnostics line, `notes`, the problems and the verdict. */
function details(
  verdict: Verdict,
  diagnostics: CrashLoopDiagnostics,
  notes: readonly string[] = [],
): string[] {
  const lines = [
    "",
    `sent while the turn before ran (steering it): ${diagnostics.steered}; ` +
      `replayed from the journal at a start: ${diagnostics.replayedAtStart}; ` +
      `answered from the transcript after a kill: ${diagnostics.recoveredFromTranscript}; ` +
      `held unanswered by the context, asked for with a reminder: ${diagnostics.reminded}; ` +
      `sent again by their client: ${diagnostics.retriedByClient}; ` +
      `asked of the model more than once: ${diagnostics.reasked}; ` +
      `given to their session twice: ${verdict.repeatedInContext}; ` +
      `contexts out of order: ${verdict.disordered}; model turns: ${diagnostics.modelRequests}`,
    ...notes,
  ];
  if (verdict.problems.length > 0) {
    const shown = verdict.problems.slice(0, 50);
    lines.push("", `${verdict.problems.length} problems:`, ...shown.map((line) => `- ${line}`));
    if (verdict.problems.length > shown.length) lines.push("- ...");
  }
  lines.push("", passed(verdict) ? "PASS" : "FAIL");
  return lines;
}
