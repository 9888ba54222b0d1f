// @ts-check
/// <reference lib="dom" />
/**
 * Small bar charts as inline SVG, drawn from numbers alone (no library, no external request),
 * with readable axes: a value axis with round ticks and its unit, and a time axis with labelled
 * hours and their day. Drawn at the width it is shown at (one SVG unit per CSS pixel), so its text
 * keeps its size on a phone and on a wide screen. Each chart has a text alternative, and the
 * numbers are also in a table beside it.
 */
import { svg } from "./dom.js";

const HEIGHT = 180;
/** Room for the value axis' tick labels, the unit above them, and two lines of time labels. */
const MARGIN = { left: 48, right: 8, top: 22, bottom: 36 };
const FONT_SIZE = 11;
/** Width used before the chart's box has been laid out. */
const DEFAULT_WIDTH = 480;

/**
 * @typedef {{ label: string, value: number | null, marker?: number | null, title: string }} Bar
 * @typedef {{ index: number, lines: string[] }} TimeTick
 * @typedef {{
 *   bars: Bar[],
 *   label: string,
 *   width?: number,
 *   unit: string,
 *   scale?: number,
 *   integers?: boolean,
 *   ticks: TimeTick[],
 * }} BarChartOptions
 */

/**
 * Bars left to right (oldest first); an optional marker per bar (a short line, e.g. a maximum).
 * Values are divided by `scale` for the value axis (1000 to show milliseconds as seconds), whose
 * unit `unit` names ("messages", "seconds"); `integers` keeps its steps whole (counts).
 * @param {BarChartOptions} options
 * @returns {SVGElement}
 */
export function barChart({
  bars,
  label,
  width = DEFAULT_WIDTH,
  unit,
  scale = 1,
  integers = false,
  ticks,
}) {
  const chartWidth = Math.max(160, Math.round(width));
  const plotLeft = MARGIN.left;
  const plotWidth = chartWidth - MARGIN.left - MARGIN.right;
  const plotTop = MARGIN.top;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const bottom = plotTop + plotHeight;
  const highest = Math.max(0, ...bars.flatMap((bar) => [bar.value ?? 0, bar.marker ?? 0])) / scale;
  const steps = niceSteps(highest, integers);
  const top = steps.at(-1) ?? 1;
  const y = (/** @type {number} */ value) => bottom - (value / scale / top) * plotHeight;
  const slot = plotWidth / Math.max(1, bars.length);
  const barWidth = Math.max(1, slot * 0.7);

  return svg(
    "svg",
    {
      viewBox: `0 0 ${chartWidth} ${HEIGHT}`,
      width: chartWidth,
      height: HEIGHT,
      role: "img",
      "aria-label": label,
      class: "chart",
      focusable: "false",
      "font-size": FONT_SIZE,
    },
    // The value axis: its unit above it, a line and a label per step.
    svg("text", { x: 0, y: FONT_SIZE, class: "axis-title" }, unit),
    steps.map((step) =>
      svg(
        "g",
        {},
        svg("line", {
          x1: plotLeft,
          x2: plotLeft + plotWidth,
          y1: y(step * scale),
          y2: y(step * scale),
          class: step === 0 ? "axis" : "grid",
        }),
        svg(
          "text",
          {
            x: plotLeft - 6,
            y: y(step * scale) + FONT_SIZE / 3,
            "text-anchor": "end",
            class: "tick",
          },
          formatStep(step),
        ),
      ),
    ),
    bars.map((bar, index) => {
      const x = plotLeft + index * slot + (slot - barWidth) / 2;
      const value = bar.value ?? 0;
      return svg(
        "g",
        {},
        svg("title", {}, bar.title),
        // A transparent full-height target, so the tooltip works over short bars too.
        svg("rect", {
          x: plotLeft + index * slot,
          y: plotTop,
          width: slot,
          height: plotHeight,
          class: "hit",
        }),
        value > 0
          ? svg("rect", {
              x,
              y: y(value),
              width: barWidth,
              height: bottom - y(value),
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
    // The time axis: a tick and one or two lines of label under the bars it names.
    ticks.map((tick) => {
      const x = plotLeft + tick.index * slot + slot / 2;
      const anchor = x < plotLeft + 30 ? "start" : x > plotLeft + plotWidth - 30 ? "end" : "middle";
      return svg(
        "g",
        {},
        svg("line", { x1: x, x2: x, y1: bottom, y2: bottom + 4, class: "axis" }),
        tick.lines.map((line, lineIndex) =>
          svg(
            "text",
            {
              x: anchor === "start" ? x - slot / 2 : anchor === "end" ? x + slot / 2 : x,
              y: bottom + 4 + (FONT_SIZE + 2) * (lineIndex + 1),
              "text-anchor": anchor,
              class: lineIndex === 0 ? "tick" : "tick day",
            },
            line,
          ),
        ),
      );
    }),
  );
}

/**
 * Round steps from 0 to at least `highest`: 0, 1, 2, 3 for 3; 0, 5, 10, 15 for 12; 0, 0.5, 1 for
 * 1 unless `integers`. Four or five steps at most.
 * @param {number} highest
 * @param {boolean} [integers]
 * @returns {number[]}
 */
export function niceSteps(highest, integers = false) {
  if (!(highest > 0)) return [0, 1];
  const rough = highest / 3;
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const nice =
    [1, 2, 2.5, 5, 10]
      .map((factor) => factor * magnitude)
      .find((candidate) => candidate >= rough) ?? 10 * magnitude;
  const step = integers ? Math.max(1, Math.ceil(nice)) : nice;
  const steps = [];
  for (let value = 0; value < highest + step; value += step) {
    steps.push(Number(value.toPrecision(12)));
    if (value >= highest) break;
  }
  return steps;
}

/** @param {number} value */
function formatStep(value) {
  return Number.isInteger(value) ? String(value) : String(Number(value.toFixed(2)));
}
