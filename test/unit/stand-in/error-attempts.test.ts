import { describe, expect, it } from "vitest";
import { composeReply, readConversation } from "../../../src/stand-in/compose-reply.js";
import { startStandInModel } from "../../../src/stand-in/model-server.js";

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
});
