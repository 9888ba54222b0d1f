/**
 * A stand-in daemon for the SIGKILL test: runs a real SessionManager in its own process, reads
 * `{chatId, name, text}` lines on stdin and prints `{reply, sessionId, pid}` lines on stdout.
 */
import { createInterface } from "node:readline";
import { asChatId } from "../../src/utils/ids.js";
import { createRealManager, textFrom } from "./real-manager.js";

const [home, modelUrl] = process.argv.slice(2);
if (!home || !modelUrl) throw new Error("usage: manager-host.ts <home> <model-url>");

const { manager } = await createRealManager({ home, modelUrl });
for await (const line of createInterface({ input: process.stdin })) {
  const request = JSON.parse(line) as { chatId: string; name: string; text: string };
  const reply = await manager.deliver(textFrom(request.chatId, request.name, request.text));
  const live = manager.status(asChatId(request.chatId))?.live;
  process.stdout.write(
    JSON.stringify({ reply: reply.text, sessionId: reply.agentSessionId, pid: live?.pid }) + "\n",
  );
}
