/**
 * Reads the Claude CLI's session transcript (one JSON object a line, in
 * `~/.claude/projects/<project>/<session id>.jsonl`, or the same objects from the transcript
 * mirror) into turns as the dashboard shows them.
 * Pure: text in, turns out; lines it does not understand are skipped, never thrown on.
 *
 * What the CLI writes (seen with CLI 2.1): `user` lines (a prompt as a string, or tool results
 * as `tool_result` blocks), `assistant` lines (one content block each: `text`, `tool_use`,
 * `thinking`; streamed blocks of one API message share `message.id` and its `usage`),
 * `attachment`, `queue-operation`, `api-request*`, `last-prompt` and other bookkeeping. Older
 * CLIs put `costUSD` and `durationMs` on assistant lines; some write `system` lines with
 * `subtype: "turn_duration"`; an SDK message log has `result` lines with `total_cost_usd` and
 * `duration_ms`. Each is used when present.
 */
import {
  contentBlocks,
  parseTranscriptLine,
  recordOf,
  textOf,
  type TranscriptLine,
} from "../agent/transcript-line.js";
import { unescapeTags } from "../identity/escape-tags.js";
import { readEnvelopes } from "../identity/read-envelopes.js";
import type { Heard } from "../identity/wrap-message.js";

export interface TranscriptInput {
  /** What the contact wrote (unwrapped from dispatch's envelope), or the prompt as it was. */
  text: string;
  /**
   * From dispatch's envelope, when the prompt carries one; a lean header's missing parts are
   * filled in from the envelopes before it in the transcript.
   */
  from: string | null;
  handle: string | null;
  channel: string | null;
  received_at: string | null;
  /** The prompt exactly as the agent saw it, when that differs from `text`. */
  raw: string | null;
  at: string | null;
  /**
   * The transcript line's id: for a message dispatch gave the agent, the UUID it was given with
   * (the journal's `inbound.uuid`), which is how a turn is matched to its recorded cost.
   */
  uuid: string | null;
}

export interface TranscriptText {
  kind: "text";
  text: string;
  at: string | null;
}

export interface TranscriptToolCall {
  kind: "tool";
  id: string;
  name: string;
  /** One line: the input's telling field (command, file path, ...) or its JSON, shortened. */
  summary: string;
  /** The whole input as indented JSON, shortened to `MAX_TOOL_INPUT_CHARS`. */
  input: string;
  /** The tool's result text, shortened; null until (unless) a result line is seen. */
  result: string | null;
  is_error: boolean;
  at: string | null;
}

export type TranscriptStep = TranscriptText | TranscriptToolCall;

export interface TranscriptTokens {
  input: number;
  output: number;
  cache_read: number;
  cache_creation: number;
}

export interface TranscriptTurn {
  /** 1-based position in the transcript. */
  index: number;
  started_at: string | null;
  ended_at: string | null;
  /** From the transcript when it says; otherwise from the first and last timestamps. */
  duration_ms: number | null;
  /**
   * From the transcript when it carries one (the CLI's current format does not); otherwise from
   * the journal's record of the turn (`turn-costs.ts`); null when neither knows.
   */
  cost_usd: number | null;
  tokens: TranscriptTokens | null;
  model: string | null;
  inputs: TranscriptInput[];
  steps: TranscriptStep[];
  is_error: boolean;
}

export const MAX_TOOL_SUMMARY_CHARS = 120;
export const MAX_TOOL_INPUT_CHARS = 4_000;
export const MAX_TOOL_RESULT_CHARS = 2_000;

/** Input fields that say best what a tool call does, in order of preference. */
const TELLING_FIELDS = [
  "command",
  "file_path",
  "notebook_path",
  "path",
  "pattern",
  "url",
  "query",
  "description",
  "text",
  "prompt",
];

interface TurnBuilder {
  turn: TranscriptTurn;
  /** Usage per API message id: streamed blocks repeat it. */
  usage: Map<string, TranscriptTokens>;
  explicitDurationMs: number | null;
  cost: number | null;
  firstMs: number | null;
  lastMs: number | null;
  tools: Map<string, TranscriptToolCall>;
}

export function parseTranscript(jsonlText: string): TranscriptTurn[] {
  return parseTranscriptEntries(jsonlText.split("\n").map(parseTranscriptLine));
}

/**
 * The same from entries already parsed: the transcript mirror in the state database (the SDK's
 * `sessionStore`) keeps each line as its object. Entries that are not objects are skipped.
 */
export function parseTranscriptEntries(entries: readonly unknown[]): TranscriptTurn[] {
  const builders: TurnBuilder[] = [];
  let current: TurnBuilder | undefined;
  /** What the agent had heard from the envelopes so far, to read the next lean one. */
  let heard: Heard | undefined;
  const unwrap = (prompt: string, at: string | null, uuid: string | null) => {
    const read = unwrapPrompt(prompt, at, uuid, heard);
    heard = read.heard;
    return read.inputs;
  };

  const startTurn = (): TurnBuilder => {
    current = {
      turn: {
        index: builders.length + 1,
        started_at: null,
        ended_at: null,
        duration_ms: null,
        cost_usd: null,
        tokens: null,
        model: null,
        inputs: [],
        steps: [],
        is_error: false,
      },
      usage: new Map(),
      explicitDurationMs: null,
      cost: null,
      firstMs: null,
      lastMs: null,
      tools: new Map(),
    };
    builders.push(current);
    return current;
  };
  const touch = (builder: TurnBuilder, at: string | null) => {
    const ms = at === null ? Number.NaN : Date.parse(at);
    if (Number.isNaN(ms)) return;
    builder.firstMs = builder.firstMs === null ? ms : Math.min(builder.firstMs, ms);
    builder.lastMs = builder.lastMs === null ? ms : Math.max(builder.lastMs, ms);
  };
  /** A prompt opens a new turn, unless the current one has had no answer yet (merged). */
  const addInput = (input: TranscriptInput) => {
    const builder = current && current.turn.steps.length === 0 ? current : startTurn();
    builder.turn.inputs.push(input);
    touch(builder, input.at);
  };

  for (const entry of entries) {
    const line = recordOf(entry);
    if (!line || line.isSidechain === true) continue;
    const at = typeof line.timestamp === "string" ? line.timestamp : null;
    switch (line.type) {
      case "user": {
        if (line.isMeta === true || line.isCompactSummary === true) break;
        const content = recordOf(line.message)?.content;
        const results = contentBlocks(content).filter((block) => block.type === "tool_result");
        if (results.length > 0) {
          const builder = current ?? startTurn();
          for (const result of results) attachResult(builder, result);
          touch(builder, at);
          break;
        }
        const text = textOf(content);
        if (text.trim() !== "")
          for (const input of unwrap(text, at, stringOf(line.uuid))) addInput(input);
        break;
      }
      case "attachment": {
        const attachment = recordOf(line.attachment);
        // A message queued mid-turn, as the CLI records it when it steers the running turn.
        if (attachment?.type === "queued_command" && typeof attachment.prompt === "string") {
          for (const input of unwrap(attachment.prompt, at, null)) {
            const builder = current ?? startTurn();
            builder.turn.inputs.push(input);
            touch(builder, at);
          }
        }
        break;
      }
      case "assistant":
        addAssistant(current ?? startTurn(), line, at);
        touch(current!, at);
        break;
      case "system": {
        if (!current) break;
        const durationMs = numberOf(line.durationMs) ?? numberOf(line.duration_ms);
        if (line.subtype === "turn_duration" && durationMs !== null)
          current.explicitDurationMs = durationMs;
        if (line.level === "error" || line.subtype === "api_error") current.turn.is_error = true;
        break;
      }
      case "result": {
        if (!current) break;
        current.explicitDurationMs = numberOf(line.duration_ms) ?? current.explicitDurationMs;
        const cost = numberOf(line.total_cost_usd);
        if (cost !== null) current.cost = cost;
        if (line.is_error === true) current.turn.is_error = true;
        break;
      }
      default:
        break;
    }
  }
  return builders.map(finish);
}

function numberOf(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function stringOf(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

/** The envelope of dispatch before the lean one, which older transcripts hold. */
const LEGACY_WRAPPED =
  /<dispatch-message nonce="([0-9a-f]+)">\n([^\n]*)\n<untrusted-text nonce="\1">\n([\s\S]*?)\n<\/untrusted-text nonce="\1">\n<\/dispatch-message nonce="\1">/g;

/** The messages in a prompt: each dispatch-wrapped block, or the whole prompt as it is. */
function unwrapPrompt(
  prompt: string,
  at: string | null,
  uuid: string | null,
  heard: Heard | undefined,
): { inputs: TranscriptInput[]; heard: Heard | undefined } {
  const read = readEnvelopes(prompt, heard);
  const inputs: TranscriptInput[] = read.envelopes.map((envelope) => ({
    text: envelope.text,
    from: envelope.from,
    handle: envelope.handle,
    channel: envelope.channel,
    received_at: envelope.receivedAt,
    raw: envelope.raw,
    at,
    uuid,
  }));
  for (const match of prompt.matchAll(LEGACY_WRAPPED)) {
    const header = parseHeader(match[2] ?? "");
    inputs.push({
      text: unescapeTags(match[3] ?? ""),
      from: stringOf(header?.from),
      handle: stringOf(header?.handle),
      channel: stringOf(header?.channel),
      received_at: stringOf(header?.received_at),
      raw: match[0],
      at,
      uuid,
    });
  }
  if (inputs.length > 0) return { inputs, heard: read.heard };
  return {
    inputs: [
      {
        text: prompt,
        from: null,
        handle: null,
        channel: null,
        received_at: null,
        raw: null,
        at,
        uuid,
      },
    ],
    heard,
  };
}

function parseHeader(text: string): TranscriptLine | undefined {
  try {
    return recordOf(JSON.parse(text));
  } catch {
    return undefined;
  }
}

function addAssistant(builder: TurnBuilder, line: TranscriptLine, at: string | null): void {
  const message = recordOf(line.message);
  const { turn } = builder;
  const model = stringOf(message?.model);
  if (model !== null && model !== "<synthetic>") turn.model = model;
  const messageId = stringOf(message?.id) ?? stringOf(line.uuid);
  const usage = recordOf(message?.usage);
  if (messageId !== null && usage) {
    builder.usage.set(messageId, {
      input: numberOf(usage.input_tokens) ?? 0,
      output: numberOf(usage.output_tokens) ?? 0,
      cache_read: numberOf(usage.cache_read_input_tokens) ?? 0,
      cache_creation: numberOf(usage.cache_creation_input_tokens) ?? 0,
    });
  }
  const cost = numberOf(line.costUSD);
  if (cost !== null) builder.cost = (builder.cost ?? 0) + cost;
  const durationMs = numberOf(line.durationMs);
  if (durationMs !== null)
    builder.explicitDurationMs = (builder.explicitDurationMs ?? 0) + durationMs;
  if (line.isApiErrorMessage === true || typeof line.error === "string") turn.is_error = true;

  for (const block of contentBlocks(message?.content)) {
    if (block.type === "text" && typeof block.text === "string" && block.text.trim() !== "") {
      turn.steps.push({ kind: "text", text: block.text, at });
    } else if (block.type === "tool_use") {
      const id = stringOf(block.id) ?? "";
      const call: TranscriptToolCall = {
        kind: "tool",
        id,
        name: stringOf(block.name) ?? "unknown",
        summary: summarise(block.input),
        input: shorten(JSON.stringify(block.input ?? {}, null, 2), MAX_TOOL_INPUT_CHARS),
        result: null,
        is_error: false,
        at,
      };
      turn.steps.push(call);
      if (id !== "") builder.tools.set(id, call);
    }
  }
}

function attachResult(builder: TurnBuilder, block: TranscriptLine): void {
  const call = builder.tools.get(stringOf(block.tool_use_id) ?? "");
  if (!call) return;
  const content = block.content;
  call.result = shorten(textOf(content), MAX_TOOL_RESULT_CHARS);
  call.is_error = block.is_error === true;
}

function summarise(input: unknown): string {
  const fields = recordOf(input);
  if (fields) {
    for (const name of TELLING_FIELDS) {
      const value = fields[name];
      if (typeof value === "string" && value.trim() !== "")
        return shorten(oneLine(value), MAX_TOOL_SUMMARY_CHARS);
    }
  }
  return shorten(JSON.stringify(input ?? {}), MAX_TOOL_SUMMARY_CHARS);
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

function shorten(text: string, length: number): string {
  return text.length <= length ? text : `${text.slice(0, length - 1)}…`;
}

function finish(builder: TurnBuilder): TranscriptTurn {
  const { turn } = builder;
  const started = builder.firstMs;
  const ended = builder.lastMs;
  turn.started_at = started === null ? null : new Date(started).toISOString();
  turn.ended_at = ended === null ? null : new Date(ended).toISOString();
  turn.duration_ms =
    builder.explicitDurationMs ??
    (started !== null && ended !== null && turn.steps.length > 0 ? ended - started : null);
  turn.cost_usd = builder.cost;
  if (builder.usage.size > 0) {
    const tokens: TranscriptTokens = { input: 0, output: 0, cache_read: 0, cache_creation: 0 };
    for (const usage of builder.usage.values()) {
      tokens.input += usage.input;
      tokens.output += usage.output;
      tokens.cache_read += usage.cache_read;
      tokens.cache_creation += usage.cache_creation;
    }
    turn.tokens = tokens;
  }
  return turn;
}
