import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startDaemon, type RunningDaemon } from "../../src/daemon/daemon.js";
import { createMemoryLogger } from "../support/memory-logger.js";
import { createChatDb, type ChatDbFixture } from "../support/chat-db.js";
import { freePort } from "../support/daemon-process.js";
import { makeTempHome } from "../support/real-manager.js";
import { RECORDING_SEND } from "../support/recorded-sends.js";

/**
 * Which channels `dispatch start --demo` turns on, on a Mac (the platform is injected; on Linux
 * iMessage is off by default anyway). Regression guard for issue 12: demo mode answers every
 * chat and left iMessage on, so a demo would have answered every real iMessage sender.
 */

let home: { home: string; remove(): Promise<void> };
let chatDb: ChatDbFixture;
let running: RunningDaemon | undefined;

beforeEach(async () => {
  home = await makeTempHome();
  chatDb = createChatDb(path.join(home.home, "chat.db"));
  chatDb.oneToOneChat("+15550001111");
  chatDb.text("+15550001111", "a stranger writes");
});

afterEach(async () => {
  await running?.stop("test end");
  running = undefined;
  chatDb.close();
  await home.remove();
});

async function startDemoOnMac(imessage: Record<string, unknown>) {
  const dispatchHome = path.join(home.home, "dispatch");
  await mkdir(dispatchHome, { recursive: true });
  await writeFile(
    path.join(dispatchHome, "config.json"),
    JSON.stringify({
      spareProcesses: 0,
      channels: {
        imessage: {
          dbPath: path.join(home.home, "chat.db"),
          sendCommand: [process.execPath, RECORDING_SEND, path.join(home.home, "sent.jsonl")],
          ...imessage,
        },
      },
    }),
  );
  const logger = createMemoryLogger();
  running = await startDaemon({
    env: { PATH: process.env.PATH, HOME: home.home, DISPATCH_PORT: String(await freePort()) },
    homeDir: home.home,
    demo: true,
    platform: "darwin",
    logger,
  });
  const imessageStarted = logger.records.some(
    (record) => record.message === "imessage-channel-start",
  );
  return { config: running.loaded.config, imessageStarted };
}

describe("dispatch start --demo on a Mac", () => {
  it("leaves iMessage off when config.json does not turn it on by name", async () => {
    const { config, imessageStarted } = await startDemoOnMac({});
    expect(config.channels.imessage.enabled).toBe(false);
    expect(imessageStarted).toBe(false);
  });

  it("turns iMessage on when config.json sets channels.imessage.enabled to true", async () => {
    const { config, imessageStarted } = await startDemoOnMac({ enabled: true });
    expect(config.channels.imessage.enabled).toBe(true);
    expect(imessageStarted).toBe(true);
  });
});
