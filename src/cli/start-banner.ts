/**
 * What `dispatch start` prints (on stderr, beside the log) once the daemon is up: where the
 * dashboard, the API, the token and the log are, demo or not, which channels are on, and one
 * command to try. Pure: the daemon reports, this formats.
 */
import type { StartInfo } from "../daemon/daemon.js";

export function renderStartBanner(info: StartInfo): string {
  const address = info.port === undefined ? undefined : `http://127.0.0.1:${info.port}`;
  const rows: [string, string][] = [];
  if (address) {
    rows.push(["dashboard", `${address}/  (sign in with the API token)`]);
    rows.push(["HTTP API", `${address}/v1  (docs/http-api.md)`]);
  }
  rows.push([
    "API token",
    info.tokenFile === undefined ? "from DISPATCH_API_TOKEN" : `in ${info.tokenFile}`,
  ]);
  rows.push([
    "channels",
    info.channels.map((channel) => `${channel.name} ${channel.on ? "on" : "off"}`).join(", ") +
      channelNotes(info.channels),
  ]);
  rows.push(["contacts", contactsLine(info)]);
  rows.push(["home", info.home]);
  rows.push(["log", `${info.logFile}  (dispatch logs -f)`]);

  const width = Math.max(...rows.map(([label]) => label.length));
  const mode = info.demo
    ? " in demo mode: replies come from the offline stand-in model, not from Claude"
    : "";
  const lines = [
    `dispatch ${info.version} is running${mode}.`,
    ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`),
    "",
    address
      ? `Try it:  dispatch send +15551234567 "Please remember the word pineapple"`
      : "The HTTP channel is off, so `dispatch send` and the dashboard cannot reach this daemon.",
    "Ctrl-C stops dispatch.",
  ];
  return `${lines.join("\n")}\n`;
}

function channelNotes(channels: StartInfo["channels"]): string {
  const notes = channels
    .filter((channel) => channel.note !== undefined)
    .map((channel) => `${channel.name}: ${channel.note}`);
  return notes.length === 0 ? "" : ` (${notes.join("; ")})`;
}

function contactsLine(info: StartInfo): string {
  const known = `${info.contacts} in contacts.json`;
  if (info.demo) return `${known}; every chat is answered in demo mode`;
  return info.answersEveryone
    ? `${known}; strangers are answered too (unknownSenders: "respond")`
    : `${known}; only they are answered (unknownSenders: "ignore")`;
}
