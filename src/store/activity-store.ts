/**
 * The activity history behind the dashboard's Health view: each message handed to a session,
 * each reply, error and restart, with its time. Kept in the state database
 * (`sqlite-activity-store.ts`) so that a restart or a crash of the daemon does not wipe the
 * last day's figures; `dashboard/activity-feed.ts` writes it and reads it back at start.
 */

/** One thing that happened; `chatId` is null for the daemon's own events (its restart). */
export type ActivityEvent =
  | { kind: "message"; atMs: number; chatId: string }
  | { kind: "reply"; atMs: number; chatId: string; latencyMs: number | null }
  | { kind: "error"; atMs: number; chatId: string | null; code: string; message: string }
  | { kind: "restart"; atMs: number; chatId: string | null; reason: string };

export interface ActivityStore {
  /** Records one event. Survives a crash of dispatch once it returns (a power cut may undo it). */
  append(event: ActivityEvent): void;
  /** The events at or after `sinceMs`, oldest first. */
  since(sinceMs: number): ActivityEvent[];
  /** Deletes the events before `beforeMs`; returns how many. */
  prune(beforeMs: number): number;
}
