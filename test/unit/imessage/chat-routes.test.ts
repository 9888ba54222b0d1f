import { describe, expect, it } from "vitest";
import type { ChatRoute } from "../../../src/channels/imessage/chat-db-row.js";
import { createRouteBook } from "../../../src/channels/imessage/chat-routes.js";

const group: ChatRoute = { chatId: "chat123", kind: "chat", recipient: "any;+;chat123" };
const noLookup = () => undefined;

describe("createRouteBook", () => {
  it("prefers a learned route, case-insensitively, without asking chat.db", () => {
    const book = createRouteBook();
    book.learn(group);
    book.learn({ chatId: "Someone@Example.com", kind: "buddy", recipient: "Someone@Example.com" });
    const lookup = () => {
      throw new Error("should not be asked");
    };
    expect(book.resolve("chat123", lookup)).toBe(group);
    expect(book.resolve("CHAT123", lookup)).toBe(group);
    expect(book.resolve("someone@example.com", lookup).recipient).toBe("Someone@Example.com");
  });

  it("asks chat.db for unknown chat ids, then guesses", () => {
    const book = createRouteBook();
    const found: ChatRoute = { chatId: "chat9", kind: "chat", recipient: "iMessage;+;chat9" };
    expect(book.resolve("chat9", (chatId) => (chatId === "chat9" ? found : undefined))).toBe(found);
    expect(book.resolve("chat77", noLookup)).toEqual({
      chatId: "chat77",
      kind: "chat",
      recipient: "iMessage;+;chat77",
    });
    expect(book.resolve("iMessage;+;chat5", noLookup)).toMatchObject({ kind: "chat" });
    expect(book.resolve("+15551234567", noLookup)).toEqual({
      chatId: "+15551234567",
      kind: "buddy",
      recipient: "+15551234567",
    });
  });

  it("forgets the oldest routes beyond its limit", () => {
    const book = createRouteBook(4);
    for (let index = 0; index < 5; index += 1) {
      book.learn({ chatId: `chat${index}`, kind: "chat", recipient: `any;+;chat${index}` });
    }
    expect(book.resolve("chat0", noLookup).recipient).toBe("iMessage;+;chat0");
    expect(book.resolve("chat1", noLookup).recipient).toBe("any;+;chat1");
    expect(book.resolve("chat4", noLookup).recipient).toBe("any;+;chat4");
  });
});
