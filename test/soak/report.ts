/** The crash loop's result as the table `npm run soak` prints and `docs/guarantees.md` quotes. */
import type { CrashLoopResult } from "./crash-loop.js";
import { passed } from "./judge.js";

export function formatReport(result: CrashLoopResult): string {
  const { verdict, diagnostics } = result;
  const lines = [
    `crash loop, seed ${result.seed}: ${result.contacts} contacts, ${result.restarts} SIGKILL restarts`,
    "",
    "| sent | answered | lost | duplicated | restarts | seconds |",
    "| ---: | ---: | ---: | ---: | ---: | ---: |",
    `| ${verdict.sent} | ${verdict.answered} | ${verdict.lost} | ${verdict.duplicated} | ${result.restarts} | ${result.seconds} |`,
    "",
    `sent while the turn before ran (steering it): ${diagnostics.steered}; ` +
      `replayed from the journal at a start: ${diagnostics.replayedAtStart}; ` +
      `answered from the transcript after a kill: ${diagnostics.recoveredFromTranscript}; ` +
      `held unanswered by the context, asked for with a reminder: ${diagnostics.reminded}; ` +
      `sent again by their client: ${diagnostics.retriedByClient}; ` +
      `asked of the model more than once: ${diagnostics.reasked}; ` +
      `given to their session twice: ${verdict.repeatedInContext}; ` +
      `contexts out of order: ${verdict.disordered}; model turns: ${diagnostics.modelRequests}`,
  ];
  if (result.home) lines.push(`home kept at ${result.home}`);
  if (verdict.problems.length > 0) {
    const shown = verdict.problems.slice(0, 50);
    lines.push("", `${verdict.problems.length} problems:`, ...shown.map((line) => `- ${line}`));
    if (verdict.problems.length > shown.length) lines.push("- ...");
  }
  lines.push("", passed(verdict) ? "PASS" : "FAIL");
  return lines.join("\n");
}
