import { describe, expect, it } from "vitest";
import { displayWidth, formatTable, truncate } from "../../../src/cli/format-table.js";

describe("formatTable", () => {
  it("pads every column to its widest cell, header included", () => {
    const table = formatTable(
      [{ header: "CHAT" }, { header: "TURNS", align: "right" }],
      [
        ["+15551234567", "3"],
        ["a@b.c", "120"],
      ],
    );
    expect(table).toBe(
      ["CHAT          TURNS", "+15551234567      3", "a@b.c           120", ""].join("\n"),
    );
  });

  it("cuts cells longer than maxWidth with an ellipsis, keeping the width", () => {
    const table = formatTable(
      [{ header: "NAME", maxWidth: 8 }, { header: "X" }],
      [["Bartholomew Longname", "1"]],
    );
    const lines = table.split("\n");
    expect(lines[1]).toBe("Barthol…  1");
    expect(lines[0]).toBe("NAME      X");
  });

  it("keeps a row on one line when a cell holds a newline or tab", () => {
    const table = formatTable([{ header: "A" }, { header: "B" }], [["one\ntwo", "x\ty"]]);
    expect(table.split("\n")).toHaveLength(3);
    expect(table).toContain("one two  x y");
  });

  it("counts an emoji as one column, not its UTF-16 length", () => {
    const table = formatTable([{ header: "NAME" }, { header: "T" }], [["Zoë 🎉", "1"]]);
    expect(table.split("\n")[1]).toBe("Zoë 🎉  1");
  });

  it("treats a missing cell as empty and trims trailing spaces", () => {
    const table = formatTable([{ header: "A" }, { header: "B" }], [["long value"]]);
    expect(table.split("\n")[1]).toBe("long value");
  });

  it("can leave out the header line", () => {
    const table = formatTable([{ header: "WIDE HEADER" }, { header: "B" }], [["a", "b"]], {
      header: false,
    });
    expect(table).toBe("a  b\n");
  });
});

describe("truncate", () => {
  it("leaves text that fits alone", () => {
    expect(truncate("hello", 5)).toBe("hello");
  });

  it("ends cut text with … within the limit", () => {
    expect(truncate("hello world", 6)).toBe("hello…");
    expect(displayWidth(truncate("hello world", 6))).toBe(6);
  });

  it("never splits a surrogate pair", () => {
    expect(truncate("🎉🎉🎉🎉", 3)).toBe("🎉🎉…");
  });

  it("returns nothing for a zero width", () => {
    expect(truncate("hello", 0)).toBe("");
  });
});
