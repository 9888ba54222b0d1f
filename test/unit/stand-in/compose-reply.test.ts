import { describe, expect, it } from "vitest";
import { unansweredReminder } from "../../../src/daemon/unanswered-reminder.js";

import {
  composeReply,
  errorTypeFor,
  MAX_DELAY_MS,
  PROMPT_TOO_LONG_MESSAGE,
  readConversation,
  TOOL_SEARCH_NAME,
  untrustedPartOf,
  userTextsOf,
  type ComposedReply,
  type Conversation,
} from "../../../src/stand-in/compose-reply.js";
import { wrapInboundMessage } from "../../../src/identity/wrap-message.js";

const REMINDER = {
  type: "text",
  text: "<system-reminder>\nAttribution for git commits ... remember the word reminder\n</system-reminder>\n",
};

type Message = { role: string; content: unknown };

/** A user message as the CLI sends a prompt: a system-reminder block, then the text. */
function user(text: string): Message {
  return { role: "user", content: [REMINDER, { type: "text", text }] };
}

function assistant(text: string): Message {
  return { role: "assistant", content: [{ type: "text", text }] };
}

function conversationOf(messages: Message[], body: Record<string, unknown> = {}): Conversation {
  const conversation = readConversation({ model: "claude-test", messages, ...body });
  if (!conversation) throw new Error("expected a conversation");
  return conversation;
}

function replyTo(messages: Message[], body: Record<string, unknown> = {}): ComposedReply {
  return composeReply(conversationOf(messages, body));
}

function textOf(reply: ComposedReply): string {
  if (reply.type !== "text") throw new Error(`expected a text reply, got ${JSON.stringify(reply)}`);
  return reply.text;
}

const SEND_MESSAGE = "mcp__dispatch__send_message";
const tools = (...names: string[]) => ({
  tools: names.map((name) => ({ name, description: name, input_schema: { type: "object" } })),
});

describe("composeReply: plain messages", () => {
  it("numbers a fresh session's first message 1 and ignores system-reminders", () => {
    expect(textOf(replyTo([user("hello there")]))).toBe(
      "[stand-in model] Reply to message 1: hello there (I can see 0 earlier messages)",
    );
  });

  it("counts every user message, so the third turn says 3", () => {
    const reply = replyTo([
      user("one"),
      assistant("a"),
      user("two"),
      assistant("b"),
      user("three"),
    ]);
    expect(textOf(reply)).toBe(
      "[stand-in model] Reply to message 3: three (I can see 2 earlier messages)",
    );
  });

  it("quotes only the untrusted part, collapses whitespace and trims to 200 characters", () => {
    const long = "word ".repeat(100);
    const wrapped = `Message from Ann:\n<untrusted-text nonce="n1">line one\n\n  line two ${long}</untrusted-text nonce="n1">`;
    const reply = textOf(replyTo([user(wrapped)]));
    const quoted = reply.slice(
      "[stand-in model] Reply to message 1: ".length,
      reply.indexOf(" (I can see"),
    );
    expect(quoted.startsWith("line one line two word word")).toBe(true);
    expect(quoted).toHaveLength(200);
    expect(reply).not.toContain("Ann");
  });

  it("accepts string content and ignores role system messages and assistant text", () => {
    const reply = replyTo([
      { role: "user", content: "first" },
      { role: "system", content: "# Environment\nremember the word nope" },
      assistant("remember the word nope"),
      { role: "user", content: "second" },
    ]);
    expect(textOf(reply)).toContain("Reply to message 2: second");
  });

  it("always starts with the stand-in prefix", () => {
    expect(textOf(replyTo([]))).toMatch(/^\[stand-in model\] /);
  });
});

describe("composeReply: remembering", () => {
  it("acknowledges 'remember the word X' and 'remember X'", () => {
    expect(textOf(replyTo([user("Please remember the word pineapple.")]))).toBe(
      "[stand-in model] OK, I will remember pineapple.",
    );
    expect(textOf(replyTo([user("remember Mango")]))).toBe(
      "[stand-in model] OK, I will remember Mango.",
    );
  });

  it("recalls the latest remembered word from earlier user messages", () => {
    const reply = replyTo([
      user("remember the word pineapple"),
      assistant("[stand-in model] OK, I will remember pineapple."),
      user("REMEMBER THE WORD kiwi"),
      assistant("ok"),
      user("what word did I ask you to remember earlier?"),
      assistant("kiwi"),
      user("What word did I ask you to remember?"),
    ]);
    expect(textOf(reply)).toBe("[stand-in model] You asked me to remember kiwi.");
  });

  it("says so when no word was given, ignoring system-reminders and assistant text", () => {
    const reply = replyTo([
      assistant("remember the word banana"),
      user("what word did I ask you to remember?"),
    ]);
    expect(textOf(reply)).toBe("[stand-in model] You never asked me to remember a word.");
  });

  it("finds the word inside untrusted-text wrappers", () => {
    const reply = replyTo([
      user('<untrusted-text nonce="a">remember the word lime</untrusted-text nonce="a">'),
      assistant("ok"),
      user('<untrusted-text nonce="b">what word did I ask you to remember?</untrusted-text>'),
    ]);
    expect(textOf(reply)).toBe("[stand-in model] You asked me to remember lime.");
  });
});

describe("composeReply: directives", () => {
  it("reads [[delay N]] and caps it at 60 s", () => {
    expect(replyTo([user("slow [[delay 1500]] please")]).delayMs).toBe(1500);
    expect(replyTo([user("[[delay 9999999]]")]).delayMs).toBe(MAX_DELAY_MS);
    expect(replyTo([user("no delay")]).delayMs).toBe(0);
  });

  it("only obeys directives in the last user text", () => {
    const reply = replyTo([user("[[delay 500]] [[error 400]]"), assistant("x"), user("calm")]);
    expect(reply).toMatchObject({ type: "text", delayMs: 0 });
  });

  it.each([
    [400, "invalid_request_error"],
    [429, "rate_limit_error"],
    [500, "api_error"],
    [529, "overloaded_error"],
  ])("answers [[error %i]] with %s", (status, errorType) => {
    const reply = replyTo([user(`[[delay 20]] [[error ${status}]]`)]);
    expect(reply).toMatchObject({ type: "error", status, errorType, delayMs: 20 });
    expect(errorTypeFor(status)).toBe(errorType);
  });

  it("answers [[prompt-too-long]] with the API's message", () => {
    expect(replyTo([user("[[prompt-too-long]]")])).toEqual({
      type: "error",
      status: 400,
      errorType: "invalid_request_error",
      message: PROMPT_TOO_LONG_MESSAGE,
      delayMs: 0,
    });
  });

  // Regression: the CLI merges a prompt whose turn failed with the next prompt into one user
  // message of two text blocks; reading the message as one text failed every later turn too.
  it("does not repeat an error once the next prompt arrives in the same merged message", () => {
    const merged: Message = {
      role: "user",
      content: [REMINDER, { type: "text", text: "[[error 400]]" }, { type: "text", text: "hi" }],
    };
    expect(textOf(replyTo([merged]))).toContain("Reply to message 2: hi");
  });

  it("reports the input tokens [[input-tokens N]] asks for, as a long conversation would", () => {
    expect(replyTo([user("[[input-tokens 990000]] hello")])).toMatchObject({
      type: "text",
      inputTokens: 990_000,
    });
    expect(replyTo([user("hello")])).not.toHaveProperty("inputTokens");
    const summary = textOf(
      replyTo([
        user("[[input-tokens 990000]] remember the word fig"),
        assistant("ok"),
        user("Your task is to create a detailed summary of the conversation so far, ..."),
      ]),
    );
    expect(summary).toContain("- remember the word fig");
    expect(summary).not.toContain("[[");
  });

  it("summarises user messages for a compaction request, without directives", () => {
    const reply = replyTo([
      user("remember the word pineapple"),
      assistant("ok"),
      user("[[prompt-too-long]] hello"),
      user("Your task is to create a detailed summary of the conversation so far, ..."),
    ]);
    const summary = textOf(reply);
    expect(summary).toContain("<summary>");
    expect(summary).toContain("- remember the word pineapple");
    expect(summary).toContain("- hello");
    expect(summary).not.toContain("[[");
  });
});

describe("composeReply: tools", () => {
  const directive = `[[tool ${SEND_MESSAGE} {"text":"on my way"}]]`;

  it("calls a listed tool with the given input", () => {
    expect(replyTo([user(directive)], tools("Read", SEND_MESSAGE))).toEqual({
      type: "tool_use",
      name: SEND_MESSAGE,
      input: { text: "on my way" },
      delayMs: 0,
    });
  });

  it("accepts inputs that contain ]] and HTML-escaped quotes, and no input at all", () => {
    const nested = replyTo([user('[[tool Grid {"rows":[[1,2]]}]] done')], tools("Grid"));
    expect(nested).toMatchObject({ type: "tool_use", input: { rows: [[1, 2]] } });
    const escaped = replyTo([user("[[tool Grid {&quot;a&quot;:1}]]")], tools("Grid"));
    expect(escaped).toMatchObject({ type: "tool_use", input: { a: 1 } });
    expect(replyTo([user("[[tool Grid]]")], tools("Grid"))).toMatchObject({ input: {} });
  });

  it("explains a missing tool and bad input", () => {
    expect(textOf(replyTo([user(directive)], tools("Read")))).toBe(
      `[stand-in model] No tool named ${SEND_MESSAGE} is available.`,
    );
    expect(textOf(replyTo([user("[[tool Grid {oops]]")], tools("Grid")))).toContain(
      "is not a JSON object",
    );
  });

  it("loads a deferred tool through ToolSearch first, as the CLI defers MCP tools", () => {
    const system = `The following deferred tools are now available via ToolSearch:\nCronCreate\n${SEND_MESSAGE}\n\nmore`;
    const first = replyTo(
      [user(directive), { role: "system", content: [{ type: "text", text: system }] }],
      tools(TOOL_SEARCH_NAME, "Read"),
    );
    expect(first).toEqual({
      type: "tool_use",
      name: TOOL_SEARCH_NAME,
      input: { query: `select:${SEND_MESSAGE}`, max_results: 1 },
      delayMs: 0,
    });

    const loaded: Message[] = [
      user(directive),
      { role: "system", content: system },
      {
        role: "assistant",
        content: [{ type: "tool_use", id: "toolu_1", name: TOOL_SEARCH_NAME, input: {} }],
      },
      {
        role: "user",
        content: [
          {
            type: "tool_result",
            tool_use_id: "toolu_1",
            content: [{ type: "tool_reference", tool_name: SEND_MESSAGE }],
          },
          { type: "text", text: "Tool loaded." },
        ],
      },
    ];
    expect(replyTo(loaded, tools(TOOL_SEARCH_NAME, SEND_MESSAGE))).toMatchObject({
      type: "tool_use",
      name: SEND_MESSAGE,
      input: { text: "on my way" },
    });
    expect(textOf(replyTo(loaded, tools(TOOL_SEARCH_NAME)))).toBe(
      `[stand-in model] No tool named ${SEND_MESSAGE} is available.`,
    );
    // "Tool loaded." is the CLI's text, not the person's.
    expect(userTextsOf(conversationOf(loaded))).toEqual([directive]);
  });

  it("reports a tool result, cut to 200 characters", () => {
    const result = `sent: ${"x".repeat(300)}`;
    const reply = replyTo([
      user(directive),
      {
        role: "assistant",
        content: [{ type: "tool_use", id: "toolu_9", name: SEND_MESSAGE, input: {} }],
      },
      {
        role: "user",
        content: [
          {
            type: "tool_result",
            tool_use_id: "toolu_9",
            content: [{ type: "text", text: result }],
          },
        ],
      },
    ]);
    expect(textOf(reply)).toBe(
      `[stand-in model] Tool ${SEND_MESSAGE} returned: ${result.slice(0, 200)}`,
    );
  });

  it("says when a tool result is an error", () => {
    const reply = replyTo([
      user(directive),
      { role: "assistant", content: [{ type: "tool_use", id: "t", name: "Bash", input: {} }] },
      {
        role: "user",
        content: [{ type: "tool_result", tool_use_id: "t", content: "denied", is_error: true }],
      },
    ]);
    expect(textOf(reply)).toBe("[stand-in model] Tool Bash returned an error: denied");
  });

  it("calls the tool again after every result for [[tool-loop ...]], as a model stuck in a loop", () => {
    const loop = '[[tool-loop Glob {"pattern":"*"}]]';
    const call = (id: string): Message => ({
      role: "assistant",
      content: [{ type: "tool_use", id, name: "Glob", input: { pattern: "*" } }],
    });
    const result = (id: string): Message => ({
      role: "user",
      content: [{ type: "tool_result", tool_use_id: id, content: "No files found" }],
    });
    const again = { type: "tool_use", name: "Glob", input: { pattern: "*" }, delayMs: 0 };
    expect(replyTo([user(loop)], tools("Glob"))).toEqual(again);
    expect(replyTo([user(loop), call("t1"), result("t1")], tools("Glob"))).toEqual(again);
    expect(
      replyTo([user(loop), call("t1"), result("t1"), call("t2"), result("t2")], tools("Glob")),
    ).toEqual(again);
    expect(textOf(replyTo([user(loop)], tools("Read")))).toBe(
      "[stand-in model] No tool named Glob is available.",
    );
  });

  it("answers a prompt sent beside the last tool result of a turn stopped at its turn limit", () => {
    // After `maxTurns` the CLI holds the last call's result and sends it with the next prompt.
    const reply = replyTo(
      [
        user('[[tool-loop Glob {"pattern":"*"}]]'),
        { role: "assistant", content: [{ type: "tool_use", id: "t", name: "Glob", input: {} }] },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "t", content: "No files found" },
            { type: "text", text: "hello again" },
          ],
        },
      ],
      tools("Glob"),
    );
    expect(textOf(reply)).toBe(
      "[stand-in model] Reply to message 2: hello again (I can see 1 earlier messages)",
    );
  });

  it("answers a message folded into a running turn after a tool result", () => {
    const reply = replyTo([
      user(directive),
      { role: "assistant", content: [{ type: "tool_use", id: "t", name: "X", input: {} }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "t", content: "ok" }] },
      {
        role: "system",
        content:
          "The user sent a new message while you were working:\nare you there?\n\nThis is how Claude Code surfaces messages the user sends mid-turn.",
      },
    ]);
    expect(textOf(reply)).toBe(
      "[stand-in model] Reply to message 2: are you there? (I can see 1 earlier messages)",
    );
  });
});

describe("readConversation", () => {
  it("rejects bodies without a messages array", () => {
    expect(readConversation(undefined)).toBeUndefined();
    expect(readConversation("text")).toBeUndefined();
    expect(readConversation({ messages: "nope" })).toBeUndefined();
  });

  it("tolerates odd messages and blocks", () => {
    const conversation = readConversation({
      messages: [null, 7, { role: "tool" }, { role: "user", content: [null, { type: "image" }] }],
      tools: [null, { name: 3 }, { name: "Read" }],
      system: 42,
    });
    expect(conversation?.toolNames).toEqual(["Read"]);
    expect(conversation && textOf(composeReply(conversation))).toBe(
      "[stand-in model] Reply to message 0:  (I can see 0 earlier messages)",
    );
  });
});

describe("untrustedPartOf", () => {
  it("joins every wrapped part and falls back to the whole text", () => {
    expect(
      untrustedPartOf('a <untrusted-text nonce="1">x</untrusted-text> b <untrusted-text>y'),
    ).toBe("x y");
    expect(untrustedPartOf("plain")).toBe("plain");
  });

  it("reads the text of dispatch's envelope, attributes and all", () => {
    const wrapped = wrapInboundMessage({
      text: "remember the word fig",
      channel: "http",
      receivedAt: new Date("2026-02-07T14:30:00.000Z"),
      sender: { name: 'Ann "> <', handle: "+15550000001", tier: "family" },
    });
    expect(untrustedPartOf(`${wrapped}\n\n${wrapped}`).replace(/\s+/g, " ").trim()).toBe(
      "remember the word fig remember the word fig",
    );
    expect(textOf(replyTo([user(wrapped)]))).toBe("[stand-in model] OK, I will remember fig.");
  });

  it("lists the markers of earlier user messages and of replies, in order, for [[markers]]", () => {
    const reply = replyTo([
      user('<untrusted-text nonce="1">c07-m0001 hello</untrusted-text>'),
      assistant("[stand-in model] Reply to message 1: c07-m0001 hello"),
      user('<untrusted-text nonce="2">c07-m0002 [[delay 5]]</untrusted-text>'),
      user('<untrusted-text nonce="3">c07-m0002 [[delay 5]]</untrusted-text>'),
      assistant("[stand-in model] Reply to message 3: c07-m0002"),
      user("[[markers]]"),
    ]);
    expect(textOf(reply)).toBe(
      "[stand-in model] Markers said: c07-m0001 c07-m0002 c07-m0002. " +
        "Markers answered: c07-m0001 c07-m0002.",
    );
    expect(textOf(replyTo([user("[[markers]]")]))).toBe(
      "[stand-in model] Markers said: (none). Markers answered: (none).",
    );
  });

  it("names every marker its turn answers, and [[markers]] counts a reply naming one once", () => {
    const wrap = (text: string, nonce: string) =>
      `<untrusted-text nonce="${nonce}">${text}</untrusted-text nonce="${nonce}">`;
    // The CLI folds messages steered into a running turn into one user entry.
    const folded = [2, 3, 4, 5, 6, 7, 8, 9]
      .map((index) => wrap(`c07-m000${index} a message long enough to be cut off`, String(index)))
      .join("\n");
    const steered = textOf(
      replyTo([user(wrap("c07-m0001", "1")), assistant("[stand-in model] done"), user(folded)]),
    );
    expect(steered).toMatch(
      / Answering c07-m0002 c07-m0003 c07-m0004 c07-m0005 c07-m0006 c07-m0007 c07-m0008 c07-m0009\.$/,
    );
    expect(textOf(replyTo([user("no markers")]))).not.toContain("Answering");

    expect(
      textOf(replyTo([user(wrap("c07-m0001", "1")), assistant(steered), user("[[markers]]")])),
    ).toContain("Markers answered: c07-m0002 c07-m0003 c07-m0004");
    expect(
      textOf(
        replyTo([
          user(wrap("c07-m0001", "1")),
          assistant("Reply to c07-m0001. Answering c07-m0001."),
          user("[[markers]]"),
        ]),
      ),
    ).toBe("[stand-in model] Markers said: c07-m0001. Markers answered: c07-m0001.");
  });

  it("answers dispatch's reminder as the messages it points at, without their delay", () => {
    const wrap = (text: string, nonce: string) =>
      `<untrusted-text nonce="${nonce}">${text}</untrusted-text nonce="${nonce}">`;
    const reminded = replyTo([
      user(wrap("c07-m0001 hello", "1")),
      assistant("[stand-in model] Reply to message 1: c07-m0001 hello"),
      user(wrap("c07-m0002 remember the word walnut [[delay 5000]]", "2")),
      // The CLI's own answer after a prompt a crash cut off.
      assistant("No response requested."),
      user(unansweredReminder(1)),
    ]);
    expect(reminded).toMatchObject({
      type: "text",
      text: "[stand-in model] OK, I will remember walnut.",
      delayMs: 0,
    });
    const folded = [wrap("c07-m0003 hi", "3"), wrap("c07-m0004 there", "4")].join("\n");
    expect(
      textOf(
        replyTo([user(folded), assistant("No response requested."), user(unansweredReminder(2))]),
      ),
    ).toBe(
      "[stand-in model] Reply to message 1: c07-m0003 hi c07-m0004 there (I can see 0 earlier " +
        "messages) Answering c07-m0003 c07-m0004.",
    );
  });

  it("answers [[silent]] with exactly the reply dispatch drops", () => {
    expect(textOf(replyTo([user("[[silent]] just chatting")]))).toBe("[silent]");
  });
});
