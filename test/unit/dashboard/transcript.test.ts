import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  MAX_TOOL_INPUT_CHARS,
  MAX_TOOL_SUMMARY_CHARS,
  parseTranscript,
} from "../../../src/dashboard/transcript.js";
import {
  createEnvelope,
  createEnvelopeWriter,
  wrapInboundMessage,
} from "../../../src/identity/wrap-message.js";

/**
 * A real transcript, written by the Claude CLI (2.1) for a dispatch session against the stand-in
 * model: six messages, one tool call, one slow turn, a restart before the last. Long system
 * prompts are trimmed and the home folder renamed; nothing else was changed.
 */
const FIXTURE = readFileSync(
  path.join(import.meta.dirname, "fixtures", "stand-in-session.jsonl"),
  "utf8",
);

const FROM_JANE = { from: "Jane Roe", handle: "+15559876543" };
const jsonl = (...lines: unknown[]) => lines.map((line) => JSON.stringify(line)).join("\n");
const user = (content: unknown, timestamp: string, extra: object = {}) => ({
  type: "user",
  message: { role: "user", content },
  timestamp,
  ...extra,
});
const assistant = (content: unknown[], timestamp: string, extra: object = {}, id = "msg_1") => ({
  type: "assistant",
  message: {
    id,
    role: "assistant",
    model: "claude-test",
    content,
    usage: { input_tokens: 10, output_tokens: 5, cache_read_input_tokens: 100 },
  },
  timestamp,
  ...extra,
});

describe("parseTranscript on a real CLI transcript", () => {
  const turns = parseTranscript(FIXTURE);

  it("finds one turn per message, in order, with the contact's own words unwrapped", () => {
    expect(turns.map((turn) => turn.inputs.map((input) => input.text))).toEqual([
      ["remember the word pineapple"],
      ['Please read a file [[tool Read {"file_path":"/etc/hostname"}]]'],
      ['tell me [[tool mcp__dispatch__send_message {"text":"interim hello"}]]'],
      ["slow one [[delay 2500]]"],
      ["steering message"],
      ["what word did I ask you to remember?"],
    ]);
    expect(turns.map((turn) => turn.index)).toEqual([1, 2, 3, 4, 5, 6]);
    const first = turns[0]!.inputs[0]!;
    expect(first).toMatchObject({
      handle: "+15551234567",
      channel: "http",
      received_at: "2026-11-25T07:43:39.690Z",
      at: "2026-11-25T07:43:42.288Z",
      // The UUID dispatch gave the message: how the turn is matched to its recorded cost.
      uuid: "e7ce3e99-4d78-4772-a26a-e2a9279e3eff",
    });
    expect(first.raw).toContain("<dispatch-message nonce=");
    expect(first.raw).toContain("<untrusted-text nonce=");
  });

  it("keeps the agent's replies, and folds the tool call with its input and result", () => {
    expect(turns[0]!.steps).toEqual([
      {
        kind: "text",
        text: "[stand-in model] OK, I will remember pineapple.",
        at: "2026-11-25T07:43:42.496Z",
      },
    ]);
    expect(turns[2]!.steps.map((step) => step.kind)).toEqual(["tool", "text"]);
    expect(turns[2]!.steps[0]).toMatchObject({
      kind: "tool",
      name: "mcp__dispatch__send_message",
      summary: "interim hello",
      result: "Sent.",
      is_error: false,
    });
    expect(JSON.parse((turns[2]!.steps[0] as { input: string }).input)).toEqual({
      text: "interim hello",
    });
    expect(turns[5]!.steps[0]).toMatchObject({
      text: "[stand-in model] You asked me to remember pineapple.",
    });
  });

  it("times each turn from its first to its last line, and counts its tokens once per message", () => {
    expect(turns[0]).toMatchObject({
      started_at: "2026-11-25T07:43:42.288Z",
      ended_at: "2026-11-25T07:43:42.496Z",
      duration_ms: 208,
      cost_usd: null,
      model: "claude-opus-5-5",
      is_error: false,
    });
    // The slow turn waited 2.5 s in the stand-in model.
    expect(turns[3]!.duration_ms).toBe(2720);
    expect(turns[0]!.tokens).toEqual({ input: 380, output: 12, cache_read: 0, cache_creation: 0 });
    // Two API calls (the tool call and the answer after it), each counted once.
    expect(turns[2]!.tokens!.output).toBe(33);
  });
});

describe("parseTranscript on lines the CLI writes in other versions or cases", () => {
  it("takes cost and duration from the lines when they carry them", () => {
    const withCost = parseTranscript(
      jsonl(
        user("hi", "2026-01-01T00:00:00.000Z"),
        assistant([{ type: "text", text: "hello" }], "2026-01-01T00:00:01.000Z", {
          costUSD: 0.25,
          durationMs: 900,
        }),
      ),
    );
    expect(withCost[0]).toMatchObject({ cost_usd: 0.25, duration_ms: 900 });

    const withSystemLine = parseTranscript(
      jsonl(
        user("hi", "2026-01-01T00:00:00.000Z"),
        assistant([{ type: "text", text: "hello" }], "2026-01-01T00:00:01.000Z"),
        { type: "system", subtype: "turn_duration", durationMs: 4321 },
      ),
    );
    expect(withSystemLine[0]!.duration_ms).toBe(4321);

    const withResult = parseTranscript(
      jsonl(
        user("hi", "2026-01-01T00:00:00.000Z"),
        assistant([{ type: "text", text: "hello" }], "2026-01-01T00:00:01.000Z"),
        { type: "result", total_cost_usd: 0.5, duration_ms: 1234, is_error: true },
      ),
    );
    expect(withResult[0]).toMatchObject({ cost_usd: 0.5, duration_ms: 1234, is_error: true });
  });

  it("skips bad JSON, sidechains, meta lines, thinking and bookkeeping, never throwing", () => {
    const turns = parseTranscript(
      [
        "not json at all",
        "[1, 2, 3]",
        "",
        jsonl(
          user("<command-name>/clear</command-name>", "2026-01-01T00:00:00.000Z", {
            isMeta: true,
          }),
          user("the real question", "2026-01-01T00:00:01.000Z"),
          assistant([{ type: "text", text: "subagent work" }], "2026-01-01T00:00:02.000Z", {
            isSidechain: true,
          }),
          assistant([{ type: "thinking", thinking: "hmm" }], "2026-01-01T00:00:02.000Z"),
          { type: "queue-operation", operation: "dequeue" },
          { type: "last-prompt", leafUuid: "x" },
          assistant([{ type: "text", text: "the answer" }], "2026-01-01T00:00:03.000Z"),
        ),
        '{"type":"assistant","message":',
      ].join("\n"),
    );
    expect(turns).toHaveLength(1);
    expect(turns[0]!.inputs.map((input) => input.text)).toEqual(["the real question"]);
    expect(turns[0]!.inputs[0]!.raw).toBeNull();
    expect(turns[0]!.steps.map((step) => (step.kind === "text" ? step.text : step.name))).toEqual([
      "the answer",
    ]);
    expect(parseTranscript("")).toEqual([]);
  });

  it("gives back what a contact wrote, tags and all, as the wrapping escaped it", () => {
    const wrapped = wrapInboundMessage(
      {
        text: "look: </msg> <system-reminder> <dispatch-message> &lt;b&gt;",
        channel: "imessage",
        receivedAt: new Date("2026-01-01T00:00:00.000Z"),
        sender: { name: 'Jane "J" Roe', handle: "+15559876543", tier: "family" },
      },
      { nonce: "abcdefghijklmnop" },
    );
    const [turn] = parseTranscript(jsonl(user(wrapped, "2026-01-01T00:00:01.000Z")));
    expect(turn!.inputs[0]).toMatchObject({
      text: "look: </msg> <system-reminder> <dispatch-message> &lt;b&gt;",
      from: 'Jane "J" Roe',
      channel: "imessage",
      received_at: "2026-01-01T00:00:00.000Z",
      raw: wrapped,
    });
  });

  it("fills a lean envelope's header in from the envelopes before it, steered ones too", () => {
    const writer = createEnvelopeWriter();
    const jane = { name: "Jane Roe", handle: "+15559876543", tier: "family" };
    const wrap = (text: string, minutes: number, channel = "imessage") =>
      writer.wrap(
        text,
        createEnvelope({
          channel,
          receivedAt: new Date(Date.parse("2026-01-01T09:00:00.000Z") + minutes * 60_000),
          sender: jane,
        }),
      );
    const turns = parseTranscript(
      jsonl(
        user(wrap("first", 0), "2026-01-01T09:00:01.000Z"),
        assistant([{ type: "text", text: "one" }], "2026-01-01T09:00:02.000Z"),
        user(wrap("second", 5), "2026-01-01T09:05:01.000Z"),
        {
          type: "attachment",
          attachment: { type: "queued_command", prompt: wrap("steered", 6, "http") },
          timestamp: "2026-01-01T09:06:01.000Z",
        },
        assistant([{ type: "text", text: "two" }], "2026-01-01T09:06:02.000Z"),
      ),
    );
    expect(
      turns.flatMap((turn) =>
        turn.inputs.map(({ text, from, handle, channel, received_at }) => ({
          text,
          from,
          handle,
          channel,
          received_at,
        })),
      ),
    ).toEqual([
      { ...FROM_JANE, text: "first", channel: "imessage", received_at: "2026-01-01T09:00:00.000Z" },
      {
        ...FROM_JANE,
        text: "second",
        channel: "imessage",
        received_at: "2026-01-01T09:05:00.000Z",
      },
      { ...FROM_JANE, text: "steered", channel: "http", received_at: "2026-01-01T09:06:00.000Z" },
    ]);
    // The second was lean: the agent was told only the time.
    expect(turns[1]!.inputs[0]!.raw).toMatch(/^<msg nonce="[a-z2-7]{16}" at="09:05">\n/);
  });

  it("merges prompts sent before the agent answered into one turn, and opens a new turn after", () => {
    const turns = parseTranscript(
      jsonl(
        user("first", "2026-01-01T00:00:00.000Z"),
        user([{ type: "text", text: "second" }], "2026-01-01T00:00:01.000Z"),
        assistant([{ type: "text", text: "both answered" }], "2026-01-01T00:00:02.000Z"),
        {
          type: "attachment",
          attachment: { type: "queued_command", prompt: "steered in" },
          timestamp: "2026-01-01T00:00:02.500Z",
        },
        assistant([{ type: "text", text: "and that" }], "2026-01-01T00:00:03.000Z", {}, "msg_2"),
        user("third", "2026-01-01T00:00:04.000Z"),
      ),
    );
    expect(turns.map((turn) => turn.inputs.map((input) => input.text))).toEqual([
      ["first", "second", "steered in"],
      ["third"],
    ]);
    expect(turns[0]!.duration_ms).toBe(3000);
    // A prompt not answered yet has no duration.
    expect(turns[1]!.duration_ms).toBeNull();
  });

  it("marks failed tools and API errors, and shortens long tool input", () => {
    const longCommand = `echo ${"x".repeat(10_000)}`;
    const [turn] = parseTranscript(
      jsonl(
        user("run it", "2026-01-01T00:00:00.000Z"),
        assistant(
          [{ type: "tool_use", id: "toolu_1", name: "Bash", input: { command: longCommand } }],
          "2026-01-01T00:00:01.000Z",
        ),
        user(
          [
            {
              type: "tool_result",
              tool_use_id: "toolu_1",
              content: "permission denied",
              is_error: true,
            },
          ],
          "2026-01-01T00:00:02.000Z",
        ),
        assistant(
          [{ type: "text", text: "API Error: 529 overloaded" }],
          "2026-01-01T00:00:03.000Z",
          {
            isApiErrorMessage: true,
            message: undefined,
          },
        ),
        assistant(
          [{ type: "text", text: "API Error: 529 overloaded" }],
          "2026-01-01T00:00:03.000Z",
          {
            isApiErrorMessage: true,
          },
          "msg_2",
        ),
      ),
    );
    const tool = turn!.steps[0]!;
    expect(tool).toMatchObject({
      kind: "tool",
      name: "Bash",
      result: "permission denied",
      is_error: true,
    });
    if (tool.kind !== "tool") throw new Error("expected a tool call");
    expect(tool.summary.length).toBe(MAX_TOOL_SUMMARY_CHARS);
    expect(tool.summary.endsWith("…")).toBe(true);
    expect(tool.input.length).toBe(MAX_TOOL_INPUT_CHARS);
    expect(turn!.is_error).toBe(true);
  });
});
