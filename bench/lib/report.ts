/** The printed table and the facts about the machine a run happened on. Pure but for `machineFacts`. */
import { execFileSync } from "node:child_process";
import os from "node:os";
import { REPO } from "./daemon-command.js";
import type { Row } from "./scenario.js";

export interface Section {
  title: string;
  rows: Row[];
}

export function formatTable(sections: readonly Section[]): string {
  const all = sections.flatMap((section) => section.rows);
  const measureWidth = Math.max(7, ...all.map((row) => row.measure.length));
  const valueWidth = Math.max(5, ...all.map((row) => row.value.length));
  const rule = `+-${"-".repeat(measureWidth)}-+-${"-".repeat(valueWidth)}-+`;
  const lines = [rule];
  for (const section of sections) {
    lines.push(`| ${section.title.padEnd(measureWidth + valueWidth + 3)} |`, rule);
    for (const row of section.rows) {
      lines.push(`| ${row.measure.padEnd(measureWidth)} | ${row.value.padStart(valueWidth)} |`);
    }
    lines.push(rule);
  }
  return lines.join("\n");
}

export interface MachineFacts {
  date: string;
  cpus: number;
  cpuModel: string;
  totalMemoryMb: number;
  node: string;
  platform: string;
  kernel: string;
  /** 1, 5 and 15 minute load averages when the run began: other work on the machine. */
  loadAverageAtStart: number[];
  gitCommit: string;
  /** Files changed in the working tree but not committed when the run began. */
  gitUncommittedFiles: number;
}

function git(args: string[]): string {
  try {
    return execFileSync("git", args, { cwd: REPO, encoding: "utf8" }).trim();
  } catch {
    return "";
  }
}

export function machineFacts(): MachineFacts {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? "unknown",
    totalMemoryMb: Math.round(os.totalmem() / 1024 / 1024),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    kernel: os.release(),
    loadAverageAtStart: os.loadavg().map((value) => Math.round(value * 100) / 100),
    gitCommit: git(["rev-parse", "--short", "HEAD"]),
    gitUncommittedFiles: git(["status", "--porcelain"]).split("\n").filter(Boolean).length,
  };
}

/** The same table as Markdown, for docs/performance.md. */
export function formatMarkdown(sections: readonly Section[]): string {
  const escape = (text: string) => text.replaceAll("|", "\\|");
  const lines = ["| scenario | measure | value |", "| --- | --- | --- |"];
  for (const section of sections) {
    for (const row of section.rows) {
      lines.push(`| ${section.title} | ${escape(row.measure)} | ${escape(row.value)} |`);
    }
  }
  return lines.join("\n");
}
