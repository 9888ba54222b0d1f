/**
 * The cluster scale run's check that the nodes agree on each chat's owner
 * (`bench/lib/owner-agreement.ts`), from every node's `GET /v1/sessions`.
 */
import { describe, expect, it } from "vitest";
import { ownerAgreement, type ChatOwnerView } from "../../../bench/lib/owner-agreement.js";

function view(chat: string, node: string | null, sessionId: string | null): ChatOwnerView {
  return { chat_id: chat, node, session_id: sessionId };
}

describe("ownerAgreement", () => {
  it("counts nothing when every node names the same owner, and null for chats never started", () => {
    const views = [
      [view("+1", "a", "s1"), view("+2", null, null)],
      [view("+1", "a", "s1"), view("+2", null, null)],
      [view("+1", "a", null), view("+2", null, null)],
    ];
    expect(ownerAgreement(views)).toEqual({ disagree: 0, unstartedWithOwner: 0 });
  });

  it("counts a started chat once when nodes name different owners, whichever view knew its session", () => {
    const views = [
      [view("+1", "a", null), view("+3", "c", "s3")],
      [view("+1", "b", "s1"), view("+3", "c", "s3")],
      [view("+1", "c", null), view("+3", null, "s3")],
    ];
    expect(ownerAgreement(views)).toEqual({ disagree: 2, unstartedWithOwner: 0 });
  });

  it("counts a chat never started that any node names an owner for (each names itself)", () => {
    const views = [
      [view("+1", "a", null), view("+2", null, null)],
      [view("+1", "b", null), view("+2", null, null)],
    ];
    expect(ownerAgreement(views)).toEqual({ disagree: 0, unstartedWithOwner: 1 });
  });
});
