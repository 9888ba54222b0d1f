/**
 * dispatch finds the Claude CLI's data for a session's folder where the real CLI writes it, also
 * for a folder whose path is longer than the 200 characters the CLI keeps whole, and a forget
 * moves it into the archive.
 */
import { mkdir, readdir, realpath } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { asChatId } from "../../src/utils/ids.js";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { claudeProjectFolders } from "../../src/agent/claude-cli-layout.js";
import { createRealManager, makeTempHome, textFrom } from "../support/real-manager.js";

const JOHN = "+15551234567";

let model: StandInModel;
let temp: { home: string; remove(): Promise<void> };

beforeAll(async () => {
  model = await startStandInModel();
  temp = await makeTempHome();
});
afterAll(async () => {
  await model.close();
  await temp.remove();
});

it("finds and archives the CLI's data of a folder whose path is longer than 200 characters", async () => {
  const home = path.join(
    await realpath(temp.home),
    ...Array.from({ length: 4 }, () => "d".repeat(60)),
  );
  await mkdir(home, { recursive: true });
  const real = await createRealManager({ home, modelUrl: model.url });
  try {
    const reply = await real.manager.deliver(textFrom(JOHN, "John Doe", "hello"));
    expect(reply.isError).toBe(false);
    const transcriptsDir = path.join(home, "transcripts");
    expect(path.join(transcriptsDir, "john-doe").length).toBeGreaterThan(200);
    const [project] = claudeProjectFolders(path.join(home, ".claude"), transcriptsDir, "john-doe");
    expect(project!.key).toMatch(/^.{200}-[0-9a-z]+$/);
    expect(await readdir(project!.folder)).toContain(`${reply.agentSessionId}.jsonl`);

    const archived = await real.manager.forget(asChatId(JOHN));
    expect(await readdir(path.join(archived!, "claude-projects", project!.key))).toContain(
      `${reply.agentSessionId}.jsonl`,
    );
    await expect(readdir(project!.folder)).rejects.toMatchObject({ code: "ENOENT" });
  } finally {
    await real.close();
  }
});
