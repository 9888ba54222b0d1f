/**
 * Whether a resumed session came back with its history. The SDK resumes whatever transcript it
 * finds (or none, when it does not know the id) and cannot say what it lost; dispatch keeps its
 * own copy of every transcript and compares. Pure.
 */

/** Conversation messages (user and assistant) on each side of a resume. */
export interface ResumeCounts {
  /** In dispatch's own copy of the session's transcript. */
  copied: number;
  /** In the transcript the agent resumed from; 0 when it found none. */
  restored: number;
}

export type ResumeVerdict =
  | { intact: true }
  /** Fewer messages came back than dispatch holds: rebuild the session from dispatch's copy. */
  | { intact: false; missing: number };

/**
 * More messages than dispatch's copy is fine (the copy can trail the CLI's own file by a batch
 * the mirror failed to write); fewer means turns were lost, the whole conversation when the
 * agent resumed from nothing.
 */
export function judgeResume(counts: ResumeCounts): ResumeVerdict {
  const missing = counts.copied - counts.restored;
  return missing > 0 ? { intact: false, missing } : { intact: true };
}
