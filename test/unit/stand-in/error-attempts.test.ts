import { describe, expect, it } from "vitest";
import { composeReply, readConversation } from "../../../src/stand-in/compose-reply.js";
import { attemptKeyOf, startStandInModel } from "../../../src/stand-in/model-server.js";

/** `[[error STATUS xN]]`: an outage that passes after N requests (the CLI's retries, or ours). */
function conversationOf(text: string) {
  return readConversation({ messages: [{ role: "user", content: text }] })!;
}

describe("[[error STATUS xN]]", () => {
  it("fails the first N attempts, then answers as usual", () => {
    const conversation = conversationOf("[[error 529 x2]] tell me about larch");
    expect(composeReply(conversation, { attempt: 0 })).toMatchObject({
      type: "error",
      status: 529,
      errorType: "overloaded_error",
    });
    expect(composeReply(conversation, { attempt: 1 })).toMatchObject({ type: "error" });
    const answer = composeReply(conversation, { attempt: 2 });
    expect(answer.type).toBe("text");
    expect(answer.type === "text" && answer.text).toContain("tell me about larch");
  });

  it("without a count, fails every attempt", () => {
    const conversation = conversationOf("[[error 429]] again");
    expect(composeReply(conversation, { attempt: 50 })).toMatchObject({
      type: "error",
      status: 429,
    });
  });

  it("is counted by the server per latest user text", async () => {
    const model = await startStandInModel();
    try {
      const post = (text: string) =>
        fetch(`${model.url}/v1/messages`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ messages: [{ role: "user", content: text }] }),
        }).then((response) => response.status);
      expect(await post("[[error 503 x1]] first")).toBe(503);
      expect(await post("[[error 503 x1]] other")).toBe(503);
      expect(await post("[[error 503 x1]] first")).toBe(200);
      expect(await post("[[error 503 x1]] other")).toBe(200);
    } finally {
      await model.close();
    }
  });

  // Regression: dispatch sends a message again after a failed turn with a leaner header (the
  // agent heard the first); counted by the whole text, the outage began again and never ended.
  it("counts a message in dispatch's envelope by its marker and its text, not its header", () => {
    const text = "[[error 529 x4]] tell me about spruce";
    const whole = `<msg nonce="abcdefghijklmnop" from="John Doe" tier="favorite">\n${text}\n</msg nonce="abcdefghijklmnop">`;
    const lean = `<msg nonce="abcdefghijklmnop">\n${text}\n</msg nonce="abcdefghijklmnop">`;
    const other = `<msg nonce="qqqqqqqqqqqqqqqq">\n${text}\n</msg nonce="qqqqqqqqqqqqqqqq">`;
    expect(attemptKeyOf(lean)).toBe(attemptKeyOf(whole));
    expect(attemptKeyOf(other)).not.toBe(attemptKeyOf(whole));
    expect(attemptKeyOf("plain text")).toBe("plain text");
  });
});
