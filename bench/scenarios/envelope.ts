/**
 * Envelope: what dispatch's wrapping of each message costs the model's context (issue 17).
 *
 * - Envelope bytes per message: what the model reads for a message beyond what the contact
 *   wrote, in a one-to-one chat and in a group of four. Measured on the requests the model got
 *   through the daemon (messages seconds apart, so the time rarely changes), and from the same
 *   envelope code over a simulated chat whose messages are minutes to days apart.
 * - Request bytes at turns 1, 50 and 200 of one one-to-one conversation through the daemon,
 *   beside the same texts pushed bare into a long-lived SDK conversation with dispatch's options
 *   but without the system prompt's part on reading envelopes: the floor.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import {
  createEnvelope,
  createEnvelopeWriter,
  type InboundMessageToWrap,
} from "../../src/identity/wrap-message.js";
import { createBenchHome, startBenchDaemon, type BenchDaemon } from "../lib/daemon.js";
import { BENCH_TIER, openDirectConversation } from "../lib/direct-sdk.js";
import { contactName, contactsFile, phoneNumber } from "../lib/fixtures.js";
import { startBenchModel, type BenchModel } from "../lib/model.js";
import { sleep, type BenchContext, type Row, type Scenario } from "../lib/scenario.js";
import { roundSummary, seededRandom, summarize, type Summary } from "../lib/stats.js";

const GROUP = "chat900000001";
/** The group's members: three contacts and one stranger (tier `unknown`, no name). */
const MEMBERS = [phoneNumber(0), phoneNumber(1), phoneNumber(2), "+15559990000"];
const DIRECT_CHAT = phoneNumber(0);
const MEASURED_TURNS = [1, 50, 200];
const SIMULATED_MESSAGES = 1_000;
/** The HTTP API's per-chat limit is 30 a minute: a refused message waits this long and retries. */
const RATE_LIMIT_WAIT_MS = 2_000;

/** What people write: short and long, plain and punctuated. */
const PHRASES = [
  "ok",
  "sounds good, see you then",
  "Can you check whether the pharmacy on Main Street is open on Sundays?",
  "thanks!",
  'What did the doctor say about the "follow-up" appointment again?',
  "Please add milk, eggs and two lemons to the shopping list.",
  "lol",
  "I'm running about 15 minutes late, tell the others to start without me.",
  "Remind me: which day is the recycling collected here, and does glass go in the same bin?",
  "yes",
  "Could you draft a short reply to Anna saying I can't make it on Friday but Saturday works?",
  "How long should I boil an egg for a soft yolk?",
  "no worries",
  "Is it going to rain tomorrow afternoon? I'm planning a walk by the lake with the kids.",
  "What's 15% of 84.50?",
  "good night",
];

export interface EnvelopeResult {
  turns: number;
  /** Bytes the model read per message beyond the contact's text, through the daemon. */
  envelopeBytes: { direct: Summary; group: Summary };
  /** The same from the envelope code over a simulated chat, messages minutes to days apart. */
  simulatedEnvelopeBytes: { direct: Summary; group: Summary; messages: number };
  /** Request body bytes at the measured turns: through the daemon, and the bare floor. */
  requestBytes: { turn: number; dispatch: number; floor: number }[];
  failed: number;
}

function phraseOf(random: () => number): string {
  return PHRASES[Math.floor(random() * PHRASES.length)]!;
}

/** A text tagged with `marker`, so its request can be found (every marker has one length). */
function textOf(random: () => number, marker: string): string {
  return `${marker} ${phraseOf(random)}`;
}

function marker(path: "d" | "g" | "f", turn: number): string {
  return `env${path}-${String(turn).padStart(4, "0")}`;
}

/** Who writes next in the group: often the same person again, else anyone. */
function nextSpeaker(random: () => number, previous: number): number {
  return random() < 0.4 ? previous : Math.floor(random() * MEMBERS.length);
}

/** Minutes between two messages of a chat: bursts, a pause, now and then a day or more. */
function gapMinutes(random: () => number): number {
  const draw = random();
  if (draw < 0.45) return 0;
  if (draw < 0.8) return 1 + Math.floor(random() * 30);
  if (draw < 0.95) return 30 + Math.floor(random() * 600);
  return 1_440 + Math.floor(random() * 4_320);
}

/** The envelope code alone over a simulated chat: bytes beyond each text. */
function simulatedOverhead(group: boolean): number[] {
  const random = seededRandom(group ? 17 : 11);
  const writer = createEnvelopeWriter();
  let at = Date.parse("2026-03-02T08:00:00.000Z");
  let speaker = 0;
  const overheads: number[] = [];
  for (let index = 0; index < SIMULATED_MESSAGES; index += 1) {
    at += gapMinutes(random) * 60_000;
    if (group) speaker = nextSpeaker(random, speaker);
    const handle = group ? MEMBERS[speaker]! : DIRECT_CHAT;
    const known = MEMBERS.indexOf(handle) < 3;
    const fields: Omit<InboundMessageToWrap, "text"> = {
      channel: random() < 0.05 ? "http" : "imessage",
      receivedAt: new Date(at),
      sender: {
        name: known ? contactName(MEMBERS.indexOf(handle)) : null,
        handle,
        tier: known ? BENCH_TIER : "unknown",
      },
      ...(group ? { group: { name: "Bench Group", chatId: GROUP } } : {}),
    };
    const text = textOf(random, marker(group ? "g" : "d", index));
    const wrapped = writer.wrap(text, createEnvelope(fields));
    overheads.push(Buffer.byteLength(wrapped) - Buffer.byteLength(text));
  }
  return overheads;
}

/** Sends through the daemon, waiting out the per-chat rate limit; false when it failed. */
async function post(
  daemon: BenchDaemon,
  context: BenchContext,
  chatId: string,
  text: string,
  extra: { sender?: string } = {},
): Promise<boolean> {
  for (;;) {
    const outcome = await daemon.post(chatId, text, extra);
    if (outcome.ok) return true;
    if (outcome.status !== 429) {
      context.log(`envelope: a message to ${chatId} failed: ${outcome.error ?? outcome.status}`);
      return false;
    }
    await sleep(RATE_LIMIT_WAIT_MS);
  }
}

function overheadOf(model: BenchModel, tag: string, text: string): number | undefined {
  const request = model.requestOf(tag);
  return request ? Buffer.byteLength(request.newestUserText) - Buffer.byteLength(text) : undefined;
}

async function run(context: BenchContext): Promise<EnvelopeResult> {
  const turns = context.quick ? 50 : 200;
  const model = await startBenchModel();
  const home = await createBenchHome({
    config: { spareProcesses: 0 },
    contacts: {
      ...contactsFile(3, BENCH_TIER),
      groups: [{ chat_id: GROUP, name: "Bench Group", tier: BENCH_TIER }],
    },
  });
  const daemon = await startBenchDaemon({ command: context.command, home, modelUrl: model.url });
  const floorFolder = path.join(home.home, "direct-sdk", "envelope");
  await mkdir(floorFolder, { recursive: true });
  const floor = openDirectConversation(
    { modelUrl: model.url, home: home.home, withoutEnvelopePrompt: true },
    floorFolder,
  );
  const random = seededRandom(5);
  const directBytes: number[] = [];
  const groupBytes: number[] = [];
  const requestBytes: EnvelopeResult["requestBytes"] = [];
  let failed = 0;
  let speaker = 0;
  try {
    context.log(`envelope: ${turns} turns of a one-to-one chat, a group and the bare SDK`);
    for (let turn = 1; turn <= turns; turn += 1) {
      // The same text through the daemon and bare, markers of one length: the same bytes.
      const phrase = phraseOf(random);
      const directText = `${marker("d", turn)} ${phrase}`;
      const floorText = `${marker("f", turn)} ${phrase}`;
      const groupText = textOf(random, marker("g", turn));
      speaker = nextSpeaker(random, speaker);
      const [directOk, groupOk, floorTurn] = await Promise.all([
        post(daemon, context, DIRECT_CHAT, directText),
        post(daemon, context, GROUP, groupText, { sender: MEMBERS[speaker]! }),
        floor.send(floorText),
      ]);
      if (!directOk || !groupOk || floorTurn.isError) {
        failed += 1;
        model.forget();
        continue;
      }
      const direct = overheadOf(model, marker("d", turn), directText);
      const group = overheadOf(model, marker("g", turn), groupText);
      if (direct !== undefined) directBytes.push(direct);
      if (group !== undefined) groupBytes.push(group);
      if (MEASURED_TURNS.includes(turn)) {
        const dispatch = model.requestOf(marker("d", turn))?.bytes;
        const bare = model.requestOf(marker("f", turn))?.bytes;
        if (dispatch !== undefined && bare !== undefined) {
          requestBytes.push({ turn, dispatch, floor: bare });
        }
      }
      model.forget(); // whole conversation bodies: keep only what was measured
      if (turn % 50 === 0) context.log(`envelope: ${turn} turns`);
    }
  } finally {
    await floor.close();
    const stop = await daemon.stop();
    if (stop.leftover.length > 0) context.log(`envelope: ${stop.leftover.length} processes left`);
    await model.close();
    await home.remove();
  }
  return {
    turns,
    envelopeBytes: {
      direct: roundSummary(summarize(directBytes)),
      group: roundSummary(summarize(groupBytes)),
    },
    simulatedEnvelopeBytes: {
      direct: roundSummary(summarize(simulatedOverhead(false))),
      group: roundSummary(summarize(simulatedOverhead(true))),
      messages: SIMULATED_MESSAGES,
    },
    requestBytes,
    failed,
  };
}

function bytes(value: number): string {
  return Number.isFinite(value) ? `${Math.round(value)} B` : "n/a";
}

function rows(result: EnvelopeResult): Row[] {
  const spread = (summary: Summary) =>
    `${bytes(summary.median)} / ${bytes(summary.p95)} / ${bytes(summary.max)}`;
  return [
    {
      measure: `envelope per message, one-to-one, through the daemon (median / p95 / max)`,
      value: spread(result.envelopeBytes.direct),
    },
    {
      measure: `envelope per message, group of 4, through the daemon (median / p95 / max)`,
      value: spread(result.envelopeBytes.group),
    },
    {
      measure: `envelope per message, one-to-one, ${result.simulatedEnvelopeBytes.messages} simulated over weeks`,
      value: spread(result.simulatedEnvelopeBytes.direct),
    },
    {
      measure: `envelope per message, group of 4, ${result.simulatedEnvelopeBytes.messages} simulated over weeks`,
      value: spread(result.simulatedEnvelopeBytes.group),
    },
    ...result.requestBytes.map(({ turn, dispatch, floor }) => ({
      measure: `request at turn ${turn}: through dispatch / bare SDK (floor) / difference`,
      value: `${bytes(dispatch)} / ${bytes(floor)} / +${bytes(dispatch - floor)} (${((dispatch / floor - 1) * 100).toFixed(1)}%)`,
    })),
    { measure: `failed turns (of ${result.turns})`, value: String(result.failed) },
  ];
}

export const envelope: Scenario<EnvelopeResult> = { name: "envelope", run, rows };
