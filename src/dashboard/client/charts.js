// @ts-check
/// <reference lib="dom" />
/**
 * Small bar charts as inline SVG, drawn from numbers alone (no library, no external request).
 * Each chart has a text alternative, and the numbers are also in a table beside it.
 */
import { svg } from "./dom.js";

const WIDTH = 480;
const HEIGHT = 120;

/**
 * @typedef {{ label: string, value: number | null, marker?: number | null, title: string }} Bar
 */

/**
 * Bars left to right (oldest first); an optional marker per bar (a short line, e.g. a maximum).
 * @param {{ bars: Bar[], label: string }} options
 * @returns {SVGElement}
 */
export function barChart({ bars, label }) {
  const top = Math.max(1, ...bars.flatMap((bar) => [bar.value ?? 0, bar.marker ?? 0]));
  const slot = WIDTH / Math.max(1, bars.length);
  const barWidth = Math.max(1, slot * 0.7);
  const y = (/** @type {number} */ value) => HEIGHT - (value / top) * (HEIGHT - 4);
  return svg(
    "svg",
    {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      preserveAspectRatio: "none",
      role: "img",
      "aria-label": label,
      class: "chart",
      focusable: "false",
    },
    svg("line", { x1: 0, y1: HEIGHT - 0.5, x2: WIDTH, y2: HEIGHT - 0.5, class: "axis" }),
    bars.map((bar, index) => {
      const x = index * slot + (slot - barWidth) / 2;
      const value = bar.value ?? 0;
      return svg(
        "g",
        {},
        svg("title", {}, bar.title),
        // A transparent full-height target, so the tooltip works over short bars too.
        svg("rect", { x: index * slot, y: 0, width: slot, height: HEIGHT, class: "hit" }),
        value > 0
          ? svg("rect", {
              x,
              y: y(value),
              width: barWidth,
              height: HEIGHT - y(value),
              class: "bar",
            })
          : null,
        bar.marker !== undefined && bar.marker !== null && bar.marker > 0
          ? svg("line", {
              x1: x - 1,
              x2: x + barWidth + 1,
              y1: y(bar.marker),
              y2: y(bar.marker),
              class: "marker",
            })
          : null,
      );
    }),
  );
}
