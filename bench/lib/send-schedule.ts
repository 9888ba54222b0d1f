/**
 * The scale run's send schedule: who sends when. Senders are a seeded random pick of the
 * registered chats; a share of them write a second time later in the run; arrivals are Poisson
 * at the given rate. Pure: the same settings and seed give the same schedule.
 */
import { seededRandom } from "./stats.js";

export interface ScheduleSettings {
  registered: number;
  senders: number;
  /** Share of senders that write a second time, later in the run. */
  repeatShare: number;
  ratePerSecond: number;
}

export interface Send {
  chat: number;
  dueMs: number;
}

/** Who sends when: first messages in random order, repeats later than their first. */
export function schedule(settings: ScheduleSettings, seed = 5): Send[] {
  const random = seededRandom(seed);
  const pool = Array.from({ length: settings.registered }, (_, index) => index);
  for (let index = pool.length - 1; index > 0; index -= 1) {
    const other = Math.floor(random() * (index + 1));
    [pool[index], pool[other]] = [pool[other]!, pool[index]!];
  }
  const senders = pool.slice(0, settings.senders);
  // Virtual times in [0, 1): firsts evenly, repeats at least a tenth of the run after.
  const events = senders.map((chat, order) => ({ chat, at: order / senders.length }));
  const repeaters = Math.round(settings.senders * settings.repeatShare);
  const early = events.filter((event) => event.at < 0.8);
  for (let index = 0; index < repeaters && early.length > 0; index += 1) {
    const [first] = early.splice(Math.floor(random() * early.length), 1);
    const after = first!.at + 0.1;
    events.push({ chat: first!.chat, at: after + random() * (1 - after) });
  }
  events.sort((left, right) => left.at - right.at);
  let dueMs = 0;
  return events.map((event) => {
    dueMs += (-Math.log(1 - random()) / settings.ratePerSecond) * 1000; // Poisson arrivals
    return { chat: event.chat, dueMs };
  });
}
