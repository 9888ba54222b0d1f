import type { ChatRoute } from "./chat-db-row.js";

/**
 * Where replies go: the daemon calls `send(chatId, text)` with the chat id the channel reported
 * (a handle, or a group's chat identifier), while Messages wants a buddy for one-to-one chats and
 * the chat's guid (`iMessage;+;chat123`, `any;+;chat123` on newer macOS) for groups. Routes are
 * learned from the rows read; the rest are looked up in chat.db, then guessed.
 */
export interface RouteBook {
  learn(route: ChatRoute): void;
  /** `lookup` asks chat.db; it is only called for chat ids no row has shown yet. */
  resolve(chatId: string, lookup: (chatId: string) => ChatRoute | undefined): ChatRoute;
}

export function createRouteBook(limit = 2000): RouteBook {
  const routes = new Map<string, ChatRoute>();
  return {
    learn(route) {
      for (const key of new Set([route.chatId, route.chatId.toLowerCase()])) {
        routes.delete(key);
        routes.set(key, route);
      }
      while (routes.size > limit) routes.delete(routes.keys().next().value as string);
    },
    resolve(chatId, lookup) {
      const learned = routes.get(chatId) ?? routes.get(chatId.toLowerCase());
      if (learned) return learned;
      if (chatId.includes(";+;")) return { chatId, kind: "chat", recipient: chatId };
      const found = lookup(chatId);
      if (found) return found;
      // A group no row or chat row names: Messages' own guid form for it.
      if (/^chat\d+$/i.test(chatId)) {
        return { chatId, kind: "chat", recipient: `iMessage;+;${chatId}` };
      }
      return { chatId, kind: "buddy", recipient: chatId };
    },
  };
}
