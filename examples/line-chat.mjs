#!/usr/bin/env node
/* global AbortController, process, console, fetch, setTimeout, TextDecoderStream */
// A line-based chat bridged through dispatch's HTTP API, with Node alone (no dependencies):
// each line on stdin is sent to the chat's agent (`POST /v1/messages`, without waiting), and
// each reply is printed on stdout as it comes from the event stream (`GET /v1/events`). When
// the stream breaks (the daemon restarted, say), it reconnects with `Last-Event-ID` and gets
// every reply it missed.
//
//   node examples/line-chat.mjs +15551234567
//
// The port is DISPATCH_PORT (7878 by default); the token DISPATCH_API_TOKEN, or the file
// state/api-token under DISPATCH_HOME (~/dispatch by default).
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const chatId = process.argv[2];
if (!chatId) {
  console.error("usage: node examples/line-chat.mjs <chat id>   (for example +15551234567)");
  process.exit(2);
}
const api = `http://127.0.0.1:${process.env.DISPATCH_PORT ?? "7878"}`;
const home = process.env.DISPATCH_HOME ?? join(homedir(), "dispatch");
const token =
  process.env.DISPATCH_API_TOKEN?.trim() ||
  readFileSync(join(home, "state", "api-token"), "utf8").trim();
const headers = { authorization: `Bearer ${token}` };

/** Ids of the messages this bridge sent: their replies are printed. */
const sent = new Set();
const answered = new Set();
let allAnswered = () => {};
let lastEventId;
let closing = false;
const stopStream = new AbortController();

async function readEvents() {
  const response = await fetch(`${api}/v1/events`, {
    headers: { ...headers, ...(lastEventId ? { "last-event-id": lastEventId } : {}) },
    signal: stopStream.signal,
  });
  if (!response.ok) throw new Error(`GET /v1/events answered ${response.status}`);
  let buffer = "";
  for await (const chunk of response.body.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    const blocks = buffer.split("\n\n");
    buffer = blocks.pop();
    for (const block of blocks) {
      const fields = {};
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue; // a heartbeat
        const colon = line.indexOf(":");
        fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart();
      }
      if (fields.id !== undefined) lastEventId = fields.id;
      if (fields.event !== "reply") continue;
      const reply = JSON.parse(fields.data);
      if (!reply.message_ids.some((id) => sent.has(id))) continue;
      console.log(reply.text);
      for (const id of reply.message_ids) answered.add(id);
      if (answered.size >= sent.size) allAnswered();
    }
  }
}

async function keepReading() {
  for (let delayMs = 500; !closing; delayMs = Math.min(delayMs * 2, 10_000)) {
    try {
      await readEvents();
      delayMs = 500;
    } catch (error) {
      if (closing) return;
      console.error(`(events: ${error.message}; reconnecting)`);
    }
    await new Promise((resolve) => setTimeout(resolve, delayMs));
  }
}

const reading = keepReading();
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "") continue;
  const messageId = randomUUID();
  sent.add(messageId);
  const response = await fetch(`${api}/v1/messages`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/json" },
    body: JSON.stringify({ chat_id: chatId, text: line, message_id: messageId }),
  });
  if (response.status !== 202) console.error(`(not sent: ${await response.text()})`);
}
// stdin ended: wait for the replies still due (a silent agent sends none: a minute at most).
await new Promise((resolve) => {
  allAnswered = resolve;
  if (answered.size >= sent.size) resolve();
  setTimeout(resolve, 60_000).unref();
});
closing = true;
stopStream.abort();
await reading;
