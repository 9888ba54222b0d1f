/**
 * The stand-in model's brain: a pure function from a Messages API conversation to a reply.
 * Replies depend on the whole conversation, so tests can prove the agent saw earlier turns.
 * Every text reply starts with {@link STAND_IN_PREFIX} so nobody mistakes it for Claude.
 */

export const STAND_IN_PREFIX = "[stand-in model]";
export const TITLE_REPLY = '{"title":"Stand-in chat"}';
export const MAX_DELAY_MS = 60_000;
export const PROMPT_TOO_LONG_MESSAGE = "prompt is too long: 250000 tokens > 200000 maximum";
/** The CLI's loader for deferred tools; the stand-in calls it like a real model would. */
export const TOOL_SEARCH_NAME = "ToolSearch";

const EXCERPT_CHARS = 200;

export type ConversationBlock =
  | { type: "text"; text: string }
  | { type: "tool_use"; id: string; name: string; input: unknown }
  | { type: "tool_result"; toolUseId: string; text: string; isError: boolean }
  | { type: "other" };

export interface ConversationMessage {
  role: "user" | "assistant" | "system";
  blocks: ConversationBlock[];
}

export interface Conversation {
  messages: ConversationMessage[];
  /** Names of the tools in the request's `tools` list. */
  toolNames: string[];
  /** The system prompt, role "system" messages and system-reminders: where deferred tools are named. */
  contextText: string;
}

export type ComposedReply = (
  | { type: "text"; text: string; delayMs: number }
  | { type: "tool_use"; name: string; input: unknown; delayMs: number }
  | { type: "error"; status: number; errorType: string; message: string; delayMs: number }
) & {
  /**
   * The `input_tokens` the reply reports (`[[input-tokens N]]`); the server's rough count of the
   * request otherwise.
   */
  inputTokens?: number;
};

// ---------------------------------------------------------------------------------------------
// Reading a request body (never throws: odd input becomes empty parts)

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function textOfContent(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((block) => (isRecord(block) && typeof block.text === "string" ? block.text : ""))
    .filter((text) => text !== "")
    .join("\n");
}

function readBlock(block: unknown): ConversationBlock {
  if (typeof block === "string") return { type: "text", text: block };
  if (!isRecord(block)) return { type: "other" };
  switch (block.type) {
    case "text":
      return { type: "text", text: typeof block.text === "string" ? block.text : "" };
    case "tool_use":
      return {
        type: "tool_use",
        id: typeof block.id === "string" ? block.id : "",
        name: typeof block.name === "string" ? block.name : "",
        input: block.input,
      };
    case "tool_result":
      return {
        type: "tool_result",
        toolUseId: typeof block.tool_use_id === "string" ? block.tool_use_id : "",
        text: textOfContent(block.content),
        isError: block.is_error === true,
      };
    default:
      return { type: "other" };
  }
}

function readMessage(message: unknown): ConversationMessage | undefined {
  if (!isRecord(message)) return undefined;
  const role = message.role;
  if (role !== "user" && role !== "assistant" && role !== "system") return undefined;
  const content = message.content;
  const blocks =
    typeof content === "string"
      ? [readBlock(content)]
      : Array.isArray(content)
        ? content.map(readBlock)
        : [];
  return { role, blocks };
}

/**
 * The conversation in a Messages API request body, or undefined when the body has no `messages`
 * array (the caller answers 400).
 */
export function readConversation(body: unknown): Conversation | undefined {
  if (!isRecord(body) || !Array.isArray(body.messages)) return undefined;
  const messages = body.messages
    .map(readMessage)
    .filter((message): message is ConversationMessage => message !== undefined);
  const toolNames = Array.isArray(body.tools)
    ? body.tools.flatMap((tool) =>
        isRecord(tool) && typeof tool.name === "string" ? [tool.name] : [],
      )
    : [];
  const contextParts = [textOfContent(body.system)];
  for (const message of messages) {
    for (const block of message.blocks) {
      if (block.type !== "text") continue;
      if (message.role === "system") contextParts.push(block.text);
      else if (message.role === "user") contextParts.push(...systemReminders(block.text));
    }
  }
  return { messages, toolNames, contextText: contextParts.join("\n") };
}

// ---------------------------------------------------------------------------------------------
// User texts

const SYSTEM_REMINDER = /<system-reminder>[\s\S]*?(?:<\/system-reminder>|$)/g;

function systemReminders(text: string): string[] {
  return text.match(SYSTEM_REMINDER) ?? [];
}

/** Texts the CLI itself puts next to tool results; no person wrote them. */
const CLI_NOTE = /^(?:Tool loaded\.|\[Request interrupted by user[^\]]*\])$/;

/**
 * What a person wrote in one user message: its text blocks without system-reminders, one text
 * per block, because the CLI merges a prompt whose turn failed with the next prompt into one
 * message of two blocks. Next to tool results, the CLI's own notes ("Tool loaded.") are left
 * out; a prompt sent after a turn stopped at its turn limit comes there, beside the result of
 * the last tool call.
 */
function userTextsIn(message: ConversationMessage): string[] {
  const besideToolResults = message.blocks.some((block) => block.type === "tool_result");
  return message.blocks
    .flatMap((block) => (block.type === "text" ? [block.text.replace(SYSTEM_REMINDER, "")] : []))
    .map((text) => text.trim())
    .filter((text) => text !== "" && !(besideToolResults && CLI_NOTE.test(text)));
}

/**
 * Messages a person sent while a turn was running: the CLI folds them into the turn as a role
 * "system" message, "The user sent a new message while you were working:\n<text>\n\nThis is how
 * Claude Code surfaces messages ...".
 */
const FOLDED_MESSAGE =
  /The user sent (?:a )?new messages? while you were working:\n([\s\S]*?)(?:\n\nThis is how Claude Code surfaces|$)/g;

function foldedMessagesIn(text: string): string[] {
  return [...text.matchAll(FOLDED_MESSAGE)]
    .map((match) => (match[1] ?? "").trim())
    .filter((folded) => folded !== "");
}

type ToolResultBlock = Extract<ConversationBlock, { type: "tool_result" }>;
type TurnEvent = { type: "text"; text: string } | ToolResultBlock;

/** What the person and the tools said, in order: user texts, folded messages, tool results. */
function eventsOf(conversation: Conversation): TurnEvent[] {
  const events: TurnEvent[] = [];
  for (const message of conversation.messages) {
    if (message.role === "assistant") continue;
    for (const block of message.blocks) {
      if (block.type === "tool_result" && message.role === "user") events.push(block);
    }
    if (message.role === "user") {
      for (const text of userTextsIn(message)) events.push({ type: "text", text });
    }
    for (const block of message.blocks) {
      if (block.type !== "text") continue;
      const carriers = message.role === "system" ? [block.text] : systemReminders(block.text);
      for (const carrier of carriers) {
        for (const folded of foldedMessagesIn(carrier)) events.push({ type: "text", text: folded });
      }
    }
  }
  return events;
}

/**
 * The text of every user message in order, without system-reminders and tool results, plus the
 * messages the CLI folded into a running turn as role "system" messages.
 */
export function userTextsOf(conversation: Conversation): string[] {
  return eventsOf(conversation).flatMap((event) => (event.type === "text" ? [event.text] : []));
}

/** dispatch's envelope (`<msg ...>`), or the `<untrusted-text>` part of the one before it. */
const UNTRUSTED_TEXT = /<(msg|untrusted-text)\b[^>]*>([\s\S]*?)(?:<\/\1\b[^>]*>|$)/gi;

/** What a contact wrote: the inside of dispatch's envelopes, else the whole text. */
export function untrustedPartOf(text: string): string {
  const parts = [...text.matchAll(UNTRUSTED_TEXT)].map((match) => match[2] ?? "");
  return parts.length > 0 ? parts.join(" ") : text;
}

function excerpt(text: string): string {
  return text.replace(/\s+/g, " ").trim().slice(0, EXCERPT_CHARS);
}

// ---------------------------------------------------------------------------------------------
// Directives

const DELAY = /\[\[delay\s+(\d+)\s*\]\]/i;
/**
 * `[[input-tokens N]]`: the reply says its request held N input tokens, as a real model does for
 * a long conversation; the CLI compacts before its next request once N nears the context window.
 */
const INPUT_TOKENS = /\[\[input-tokens\s+(\d+)\s*\]\]/i;
/** `[[error 529]]` fails every request; `[[error 529 x3]]` only the first 3 (an outage that passes). */
const ERROR = /\[\[error\s+(\d{3})(?:\s+x(\d+))?\s*\]\]/i;
const PROMPT_TOO_LONG = /\[\[prompt-too-long\]\]/i;
/** Asks for the reply dispatch treats as "say nothing" (a group chat where no answer is needed). */
const SILENT = /\[\[silent\]\]/i;
export const SILENT_REPLY_TEXT = "[silent]";
const TOOL = /\[\[tool\s+([^\s\]]+)/i;
/**
 * `[[tool-loop NAME JSON]]`: as `[[tool ...]]`, and the same call again after every result, for
 * ever: a model stuck in a tool loop, which only the CLI's turn limit (`maxTurns`) ends.
 */
const TOOL_LOOP = /\[\[tool-loop\s+([^\s\]]+)/i;
/**
 * Asks which markers (tokens like `c07-m0013`, as the crash-loop soak numbers its messages) the
 * conversation holds, so a test can read a session's context back in order.
 */
const MARKERS = /\[\[markers\]\]/i;
const MARKER = /\b[a-z]+\d+-m\d+\b/gi;
const DIRECTIVE =
  /\[\[(?:delay|error|tool|prompt-too-long|silent|markers|input-tokens)[\s\S]*?\]\]/gi;
/** The CLI's compaction prompt (sent after "prompt is too long", or when context runs low). */
const COMPACT_REQUEST = /create a detailed summary of the conversation so far/i;
const RECALL = /what\s+word\s+did\s+i\s+ask\s+you\s+to\s+remember/i;
const REMEMBER = /\bremember\s+(?:the\s+word\s+)?["'“‘]?([\p{L}\p{N}_-]+)/giu;

function delayOf(text: string): number {
  const match = DELAY.exec(text);
  if (!match?.[1]) return 0;
  return Math.min(Number.parseInt(match[1], 10), MAX_DELAY_MS);
}

export function errorTypeFor(status: number): string {
  if (status === 529) return "overloaded_error";
  if (status === 429) return "rate_limit_error";
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 413) return "request_too_large";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

function decodeEntities(text: string): string {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&apos;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

function parseJsonObject(text: string): unknown {
  for (const candidate of [text, decodeEntities(text)]) {
    try {
      const value: unknown = JSON.parse(candidate);
      if (isRecord(value)) return value;
    } catch {
      // try the next candidate
    }
  }
  return undefined;
}

type ToolDirective = { name: string; input: unknown } | { name: string; invalidInput: string };

/**
 * `[[tool NAME JSON]]`: the input is the longest prefix of what follows NAME, up to a `]]`, that
 * parses as a JSON object, so inputs may contain `]]` themselves. No JSON means `{}`.
 */
function toolDirectiveOf(text: string, pattern = TOOL): ToolDirective | undefined {
  const match = pattern.exec(text);
  if (!match?.[1]) return undefined;
  const name = match[1];
  const rest = text.slice(match.index + match[0].length);
  let end = rest.indexOf("]]");
  if (end === -1) return undefined;
  if (rest.slice(0, end).trim() === "") return { name, input: {} };
  const firstEnd = end;
  while (end !== -1) {
    const input = parseJsonObject(rest.slice(0, end).trim());
    if (input !== undefined) return { name, input };
    end = rest.indexOf("]]", end + 1);
  }
  return { name, invalidInput: rest.slice(0, firstEnd).trim() };
}

function latestRememberedWord(text: string): string | undefined {
  const matches = [...text.matchAll(REMEMBER)];
  return matches.at(-1)?.[1];
}

function isDeferredTool(conversation: Conversation, name: string): boolean {
  if (!conversation.toolNames.includes(TOOL_SEARCH_NAME)) return false;
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`^\\s*${escaped}\\s*$`, "m").test(conversation.contextText);
}

// ---------------------------------------------------------------------------------------------
// Composing

function text(body: string): ComposedReply {
  return { type: "text", text: `${STAND_IN_PREFIX} ${body}`, delayMs: 0 };
}

function findToolUse(
  conversation: Conversation,
  id: string,
): { name: string; input: unknown } | undefined {
  for (const message of conversation.messages) {
    for (const block of message.blocks) {
      if (block.type === "tool_use" && block.id === id) return block;
    }
  }
  return undefined;
}

function callOrExplain(conversation: Conversation, directive: ToolDirective): ComposedReply {
  if ("invalidInput" in directive) {
    return text(
      `The input for tool ${directive.name} is not a JSON object: ${directive.invalidInput}`,
    );
  }
  if (conversation.toolNames.includes(directive.name)) {
    return { type: "tool_use", name: directive.name, input: directive.input, delayMs: 0 };
  }
  return text(`No tool named ${directive.name} is available.`);
}

/** The answer to a turn whose last user message carries a tool result. */
function replyToToolResult(
  conversation: Conversation,
  result: ToolResultBlock,
  lastUserText: string,
): ComposedReply {
  const call = findToolUse(conversation, result.toolUseId);
  const name = call?.name ?? "unknown";
  const loop = toolDirectiveOf(lastUserText, TOOL_LOOP);
  if (loop) return callOrExplain(conversation, loop);
  if (name === TOOL_SEARCH_NAME) {
    // We loaded a deferred tool for a [[tool ...]] directive; now call it, or say it is missing.
    const directive = toolDirectiveOf(lastUserText);
    if (directive) return callOrExplain(conversation, directive);
  }
  const verb = result.isError ? "returned an error" : "returned";
  return text(`Tool ${name} ${verb}: ${result.text.slice(0, EXCERPT_CHARS)}`);
}

/**
 * The answer to a compaction request: every earlier user message, so a remembered word survives
 * compaction. Directives are dropped so the summary cannot trigger them again.
 */
function summaryOf(earlierTexts: string[]): string {
  const lines = earlierTexts.map(
    (earlier) => `- ${excerpt(untrustedPartOf(earlier).replace(DIRECTIVE, ""))}`,
  );
  return [
    "<analysis>The stand-in model lists the user's messages.</analysis>",
    "<summary>",
    "All user messages:",
    ...(lines.length > 0 ? lines : ["(none)"]),
    "</summary>",
  ].join("\n");
}

/**
 * `[[markers]]`: the markers in the earlier user messages (what the contact wrote, each time the
 * session was given it) and in the assistant's replies (once per reply that names it), both in
 * conversation order.
 */
function markersOf(conversation: Conversation, earlierTexts: string[]): string {
  const said = earlierTexts.flatMap((earlier) => untrustedPartOf(earlier).match(MARKER) ?? []);
  const answered = conversation.messages
    .filter((message) => message.role === "assistant")
    .flatMap((message) => [
      ...new Set(
        message.blocks.flatMap((block) =>
          block.type === "text" ? (block.text.match(MARKER) ?? []) : [],
        ),
      ),
    ]);
  const list = (markers: string[]) => (markers.length > 0 ? markers.join(" ") : "(none)");
  return `Markers said: ${list(said)}. Markers answered: ${list(answered)}.`;
}

/**
 * dispatch's request, after a restart, for the answer to messages the conversation holds
 * unanswered (`daemon/unanswered-reminder.ts`): a model answers the messages it points at.
 */
const UNANSWERED_REMINDER =
  /^\(dispatch\) The last (?:message|\d+ messages) from the person above reached you just before dispatch restarted/;

/** The CLI's stand-in answer after a prompt a crash cut off; the model never said it. */
const NO_RESPONSE_REQUESTED = "No response requested.";

/**
 * The markers in what the person said since the model's last answer: the messages this turn
 * answers, several when messages were steered into a running turn, or when dispatch asks for
 * the answer to messages a crash left unanswered.
 */
function markersSinceLastAnswer(conversation: Conversation): string[] {
  const isAnswer = (message: ConversationMessage) =>
    message.role === "assistant" &&
    !message.blocks.some((block) => block.type === "tool_use") &&
    message.blocks.some(
      (block) => block.type === "text" && block.text.trim() !== NO_RESPONSE_REQUESTED,
    );
  let start = conversation.messages.length;
  while (start > 0 && !isAnswer(conversation.messages[start - 1]!)) start -= 1;
  const since = { ...conversation, messages: conversation.messages.slice(start) };
  return [
    ...new Set(userTextsOf(since).flatMap((said) => untrustedPartOf(said).match(MARKER) ?? [])),
  ];
}

function replyToText(
  conversation: Conversation,
  userTexts: string[],
  attempt: number,
): ComposedReply {
  const lastUserText = userTexts.at(-1) ?? "";
  if (COMPACT_REQUEST.test(lastUserText)) return text(summaryOf(userTexts.slice(0, -1)));

  if (MARKERS.test(lastUserText)) return text(markersOf(conversation, userTexts.slice(0, -1)));

  // Unprefixed on purpose: it is the exact text dispatch drops instead of sending.
  if (SILENT.test(lastUserText)) return { type: "text", text: SILENT_REPLY_TEXT, delayMs: 0 };
  if (PROMPT_TOO_LONG.test(lastUserText)) {
    return {
      type: "error",
      status: 400,
      errorType: "invalid_request_error",
      message: PROMPT_TOO_LONG_MESSAGE,
      delayMs: 0,
    };
  }
  const errorMatch = ERROR.exec(lastUserText);
  const status = errorMatch?.[1] ? Number.parseInt(errorMatch[1], 10) : 0;
  const failures = errorMatch?.[2] ? Number.parseInt(errorMatch[2], 10) : Number.POSITIVE_INFINITY;
  if (status >= 400 && status <= 599 && attempt < failures) {
    return {
      type: "error",
      status,
      errorType: errorTypeFor(status),
      message: `${STAND_IN_PREFIX} Simulated HTTP ${status} error, as the conversation asked.`,
      delayMs: 0,
    };
  }
  const directive = toolDirectiveOf(lastUserText) ?? toolDirectiveOf(lastUserText, TOOL_LOOP);
  if (directive) {
    if (!("invalidInput" in directive) && !conversation.toolNames.includes(directive.name)) {
      if (isDeferredTool(conversation, directive.name)) {
        return {
          type: "tool_use",
          name: TOOL_SEARCH_NAME,
          input: { query: `select:${directive.name}`, max_results: 1 },
          delayMs: 0,
        };
      }
    }
    return callOrExplain(conversation, directive);
  }
  if (RECALL.test(lastUserText)) {
    const word = userTexts
      .slice(0, -1)
      .filter((earlier) => !RECALL.test(earlier))
      .map(latestRememberedWord)
      .filter((found): found is string => found !== undefined)
      .at(-1);
    return text(
      word === undefined
        ? "You never asked me to remember a word."
        : `You asked me to remember ${word}.`,
    );
  }
  const word = latestRememberedWord(lastUserText);
  if (word !== undefined) return text(`OK, I will remember ${word}.`);

  const count = userTexts.length;
  const said = excerpt(untrustedPartOf(lastUserText));
  const answering = markersSinceLastAnswer(conversation);
  return text(
    `Reply to message ${count}: ${said} (I can see ${Math.max(count - 1, 0)} earlier messages)` +
      (answering.length > 0 ? ` Answering ${answering.join(" ")}.` : ""),
  );
}

/**
 * The stand-in model's reply to the latest thing said. Rules, first match wins:
 * - a tool result: `Tool NAME returned: <result>` (after a ToolSearch the stand-in made for a
 *   deferred tool: the call to that tool);
 * - otherwise, on the last user text: `[[prompt-too-long]]`, `[[error STATUS]]`,
 *   `[[tool NAME JSON]]`, `[[tool-loop NAME JSON]]` (the same call after every result, for
 *   ever), `[[markers]]` (which markers like `c07-m0013` the conversation holds),
 *   "what word did I ask you to remember", "remember (the word) X", and
 *   finally `Reply to message N: <text> (I can see N-1 earlier messages)`, followed by
 *   `Answering <markers>.` when what the person said since the last answer holds markers.
 * After dispatch's reminder for messages a restart left unanswered, the rules apply to the last
 * user text before it, as if the reminder were not there.
 * `[[delay N]]` in the last user text delays any of these by N ms (at most 60 s);
 * `[[input-tokens N]]` makes it report N input tokens.
 * `[[error STATUS xN]]` fails only while `attempt` (how many requests ending in the same
 * message came before this one; the server counts them, `attemptKeyOf`) is below N, then
 * answers as usual.
 */
export function composeReply(
  conversation: Conversation,
  options: { attempt?: number } = {},
): ComposedReply {
  const events = eventsOf(conversation);
  const userTexts = events.flatMap((event) => (event.type === "text" ? [event.text] : []));
  const last = events.at(-1);
  if (last?.type === "tool_result") {
    return replyToToolResult(conversation, last, userTexts.at(-1) ?? "");
  }
  const lastUserText = userTexts.at(-1) ?? "";
  // A reminder is answered as the messages before it would have been, without their delay.
  const answered = UNANSWERED_REMINDER.test(lastUserText) ? userTexts.slice(0, -1) : userTexts;
  const reply = replyToText(conversation, answered, options.attempt ?? 0);
  const inputTokens = INPUT_TOKENS.exec(lastUserText)?.[1];
  return {
    ...reply,
    delayMs: delayOf(lastUserText),
    ...(inputTokens !== undefined ? { inputTokens: Number.parseInt(inputTokens, 10) } : {}),
  };
}
