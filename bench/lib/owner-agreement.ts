/**
 * How far the nodes of a cluster agree on each chat's owner, from every node's
 * `GET /v1/sessions` (`node`: the owner's id, or null when no node holds the chat's lease). Pure.
 */

export interface ChatOwnerView {
  chat_id: string;
  node: string | null;
  session_id: string | null;
}

export interface OwnerAgreement {
  /** Started chats (a session id in some node's view) that two nodes give different owners. */
  disagree: number;
  /** Chats never started (no session id in any view, so no lease) that some node names an owner for. */
  unstartedWithOwner: number;
}

/** `views`: each node's `GET /v1/sessions`. */
export function ownerAgreement(views: readonly (readonly ChatOwnerView[])[]): OwnerAgreement {
  const byChat = new Map<string, ChatOwnerView[]>();
  for (const view of views) {
    for (const session of view) {
      byChat.set(session.chat_id, [...(byChat.get(session.chat_id) ?? []), session]);
    }
  }
  let disagree = 0;
  let unstartedWithOwner = 0;
  for (const seen of byChat.values()) {
    const started = seen.some((session) => session.session_id !== null);
    if (started && new Set(seen.map((session) => session.node)).size > 1) disagree += 1;
    if (!started && seen.some((session) => session.node !== null)) unstartedWithOwner += 1;
  }
  return { disagree, unstartedWithOwner };
}
