/**
 * Plain-text tables for the terminal. Pure: strings in, one string out, no dependency.
 * Widths count code points, so an emoji or accented name does not throw the columns off by the
 * bytes of its encoding (wide East Asian characters still count as one column).
 */

export interface TableColumn {
  header: string;
  /** Numbers read best right-aligned. Default `left`. */
  align?: "left" | "right";
  /** Longer cells are cut to this many characters, ending in "…". */
  maxWidth?: number;
}

export interface TableOptions {
  /** Between columns. Default two spaces. */
  gap?: string;
  /** Default true; false aligns the rows without a header line. */
  header?: boolean;
}

const ELLIPSIS = "…";
// Line breaks and other control characters would break the row apart; tabs would misalign it.
const CONTROL_CHARACTERS = /[\p{Cc}\u2028\u2029]/gu;

/** Renders a header row and the rows beneath it, one line each, ending with a newline. */
export function formatTable(
  columns: readonly TableColumn[],
  rows: readonly (readonly string[])[],
  options: TableOptions = {},
): string {
  const gap = options.gap ?? "  ";
  const header = columns.map((column) => fitCell(column.header, column.maxWidth));
  const body = rows.map((row) =>
    columns.map((column, index) => fitCell(row[index] ?? "", column.maxWidth)),
  );
  const lines = options.header === false ? body : [header, ...body];
  const widths = columns.map((_, index) =>
    Math.max(0, ...lines.map((cells) => displayWidth(cells[index] ?? ""))),
  );
  const renderRow = (cells: readonly string[]): string =>
    cells
      .map((cell, index) => pad(cell, widths[index] ?? 0, columns[index]?.align ?? "left"))
      .join(gap)
      .trimEnd();
  return lines.map((cells) => `${renderRow(cells)}\n`).join("");
}

/** Cuts `text` to at most `maxWidth` characters, the last being "…" when anything was cut. */
export function truncate(text: string, maxWidth: number): string {
  const characters = Array.from(text);
  if (characters.length <= maxWidth) return text;
  if (maxWidth <= 0) return "";
  return characters.slice(0, maxWidth - 1).join("") + ELLIPSIS;
}

/** Width in columns, counting code points. */
export function displayWidth(text: string): number {
  return Array.from(text).length;
}

function fitCell(text: string, maxWidth: number | undefined): string {
  const singleLine = text.replace(CONTROL_CHARACTERS, " ");
  return maxWidth === undefined ? singleLine : truncate(singleLine, maxWidth);
}

function pad(text: string, width: number, align: "left" | "right"): string {
  const padding = " ".repeat(Math.max(0, width - displayWidth(text)));
  return align === "right" ? padding + text : text + padding;
}
