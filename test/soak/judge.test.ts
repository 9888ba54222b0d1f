/** The crash loop's judge must fail a run that lost, duplicated or reordered a message. */
import { describe, expect, it } from "vitest";
import { judge, passed, type ContactEvidence, type JournalEvidence } from "./judge.js";

const answered: JournalEvidence = { status: "answered" };

/** A contact whose two messages were answered once each, in order, on every view. */
function clean(): ContactEvidence {
  return {
    contact: "c01",
    messages: [
      { marker: "c01-m0001", reply: "Reply to message 1: c01-m0001", attempts: 1 },
      { marker: "c01-m0002", reply: "Reply to message 2: c01-m0002", attempts: 3 },
    ],
    journal: new Map([
      ["c01-m0001", answered],
      ["c01-m0002", answered],
    ]),
    context: { said: ["c01-m0001", "c01-m0002"], answered: ["c01-m0001", "c01-m0002"] },
  };
}

describe("judge", () => {
  it("passes a run where every message was answered once, in order", () => {
    const verdict = judge([clean()]);
    expect(verdict).toMatchObject({ sent: 2, answered: 2, lost: 0, duplicated: 0 });
    expect(passed(verdict)).toBe(true);
  });

  it("counts a message given to its session twice, answered once, without failing", () => {
    const contact = clean();
    contact.context!.said = ["c01-m0001", "c01-m0002", "c01-m0002"];
    const verdict = judge([contact]);
    expect(verdict.repeatedInContext).toBe(1);
    expect(passed(verdict)).toBe(true);
  });

  it("fails a message whose client got no reply, or another message's", () => {
    const contact = clean();
    contact.messages[0] = { marker: "c01-m0001", error: "deadline passed", attempts: 9 };
    contact.messages[1] = { marker: "c01-m0002", reply: "Reply: c01-m0001", attempts: 1 };
    const verdict = judge([contact]);
    expect(verdict).toMatchObject({ answered: 0, lost: 2 });
    expect(passed(verdict)).toBe(false);
  });

  it("fails a message the journal never marked answered, or the context does not hold", () => {
    const contact = clean();
    contact.journal = new Map([["c01-m0001", { status: "delivered" }]]);
    contact.context = { said: ["c01-m0001"], answered: ["c01-m0001"] };
    const verdict = judge([contact]);
    expect(verdict.lost).toBe(2);
    expect(verdict.problems.join("\n")).toMatch(/c01-m0001: lost: the journal has it delivered/);
    expect(verdict.problems.join("\n")).toMatch(/c01-m0002: lost: .*not at all.*does not hold/);
  });

  it("fails a message answered twice in its session's context", () => {
    const contact = clean();
    contact.context!.answered = ["c01-m0001", "c01-m0001", "c01-m0002"];
    const verdict = judge([contact]);
    expect(verdict.duplicated).toBe(1);
    expect(passed(verdict)).toBe(false);
  });

  it("fails a context out of order, or holding another contact's message", () => {
    const reordered = clean();
    reordered.context!.said = ["c01-m0002", "c01-m0001"];
    expect(judge([reordered]).disordered).toBe(1);
    const leaked = clean();
    leaked.context!.said.push("c02-m0001");
    const verdict = judge([leaked]);
    expect(verdict.problems).toContain("c01: context holds others' messages: c02-m0001");
    expect(passed(verdict)).toBe(false);
  });

  it("fails a contact whose context could not be read, and a run that sent nothing", () => {
    const contact = clean();
    delete contact.context;
    expect(passed(judge([contact]))).toBe(false);
    expect(passed(judge([]))).toBe(false);
  });
});
