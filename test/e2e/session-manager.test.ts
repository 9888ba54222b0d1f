import { spawn } from "node:child_process";
import { readFile, writeFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { ManualClock } from "../support/manual-clock.js";
import { asChatId } from "../../src/utils/ids.js";
import {
  createRealManager,
  isProcessAlive,
  registryPath,
  textFrom,
  waitUntil,
} from "../support/real-manager.js";
import { useStandInHome } from "../support/stand-in-home.js";

const JOHN = "+15551234567";
const JANE = "+15559876543";
const MINUTE = 60_000;

const bed = useStandInHome();

async function managerFor(options: Partial<Parameters<typeof createRealManager>[0]> = {}) {
  const real = await createRealManager({ home: bed.home, modelUrl: bed.model.url, ...options });
  bed.closers.push(() => real.close());
  return real;
}

describe("sessions through the real Claude Agent SDK", () => {
  it("persists context across messages: a later turn sees an earlier one", async () => {
    const { manager } = await managerFor();
    const first = await manager.deliver(
      textFrom(JOHN, "John Doe", "Please remember the word pineapple"),
    );
    expect(first.text).toContain("I will remember pineapple");

    const second = await manager.deliver(
      textFrom(JOHN, "John Doe", "What word did I ask you to remember?"),
    );
    expect(second.text).toContain("You asked me to remember pineapple");
    expect(second.isError).toBe(false);
  });

  it("resumes with the same session id after a shutdown and a new manager", async () => {
    const first = await managerFor();
    await first.manager.deliver(textFrom(JOHN, "John Doe", "remember the word lighthouse"));
    const sessionId = first.registry.get(asChatId(JOHN))!.session_id;
    await first.close();
    bed.closers.pop();

    const onDisk = JSON.parse(await readFile(registryPath(bed.home), "utf8")) as Record<
      string,
      { session_id: string }
    >;
    expect(onDisk[JOHN]!.session_id).toBe(sessionId);

    const second = await managerFor();
    const reply = await second.manager.deliver(
      textFrom(JOHN, "John Doe", "what word did I ask you to remember?"),
    );
    expect(reply.text).toContain("You asked me to remember lighthouse");
    expect(reply.agentSessionId).toBe(sessionId);
    expect(second.registry.get(asChatId(JOHN))!.session_id).toBe(sessionId);
  });

  it("resumes after the process running the manager is killed with SIGKILL", async () => {
    const host = spawn(
      process.execPath,
      ["--import", "tsx", "test/support/manager-host.ts", bed.home, bed.model.url],
      {
        stdio: ["pipe", "pipe", "inherit"],
      },
    );
    const lines = createInterface({ input: host.stdout });
    const nextLine = () => new Promise<string>((resolve) => lines.once("line", resolve));
    host.stdin.write(
      JSON.stringify({ chatId: JOHN, name: "John Doe", text: "remember the word harbour" }) + "\n",
    );
    const answer = JSON.parse(await nextLine()) as {
      reply: string;
      sessionId: string;
      pid: number;
    };
    expect(answer.reply).toContain("I will remember harbour");

    host.kill("SIGKILL");
    await new Promise((resolve) => host.once("exit", resolve));
    // The CLI child sees its input close and exits: no orphan outlives the killed daemon.
    await waitUntil(() => !isProcessAlive(answer.pid), 15_000, "the orphaned CLI to exit");

    const { manager, registry } = await managerFor();
    expect(registry.get(asChatId(JOHN))!.session_id).toBe(answer.sessionId);
    const reply = await manager.deliver(
      textFrom(JOHN, "John Doe", "what word did I ask you to remember?"),
    );
    expect(reply.text).toContain("You asked me to remember harbour");
    expect(reply.agentSessionId).toBe(answer.sessionId);
  });

  it("keeps each contact isolated, also when both talk at once", async () => {
    const { manager, registry } = await managerFor();
    await manager.deliver(textFrom(JOHN, "John Doe", "remember the word saffron"));
    const janeAsks = await manager.deliver(
      textFrom(JANE, "Jane Roe", "what word did I ask you to remember?"),
    );
    expect(janeAsks.text).toContain("You never asked me to remember a word");
    expect(janeAsks.text).not.toContain("saffron");

    const [john, jane] = await Promise.all([
      manager.deliver(textFrom(JOHN, "John Doe", "tell me about cobalt")),
      manager.deliver(textFrom(JANE, "Jane Roe", "tell me about marble")),
    ]);
    expect(john.text).toContain("cobalt");
    expect(john.text).not.toContain("marble");
    expect(jane.text).toContain("marble");
    expect(jane.text).not.toContain("cobalt");
    expect(registry.get(asChatId(JOHN))!.session_id).not.toBe(
      registry.get(asChatId(JANE))!.session_id,
    );
    // No request to the model ever mixed the two contacts' words.
    for (const request of bed.model.mainRequests()) {
      const texts = request.userTexts.join("\n");
      expect(texts.includes("saffron") && texts.includes("marble")).toBe(false);
    }
  });

  it("restarts a session whose CLI process was killed at the next health check", async () => {
    const clock = new ManualClock();
    const { manager } = await managerFor({ clock });
    await manager.deliver(textFrom(JOHN, "John Doe", "remember the word quartz"));
    const before = manager.status(asChatId(JOHN))!.live!;
    expect(before.pid).toBeDefined();

    process.kill(-before.pid!, "SIGKILL");
    await waitUntil(
      () => manager.status(asChatId(JOHN))!.state === "failed",
      15_000,
      "the session to fail",
    );

    clock.advance(4 * MINUTE);
    expect(manager.status(asChatId(JOHN))!.state).toBe("failed");
    clock.advance(1 * MINUTE);
    await waitUntil(() => manager.status(asChatId(JOHN))!.state === "idle", 15_000, "the restart");

    const after = manager.status(asChatId(JOHN))!;
    expect(after.live!.pid).not.toBe(before.pid);
    expect(after.restarts).toBe(1);
    const reply = await manager.deliver(
      textFrom(JOHN, "John Doe", "what word did I ask you to remember?"),
    );
    expect(reply.text).toContain("You asked me to remember quartz");
    expect(reply.agentSessionId).toBe(before.agentSessionId);
  });

  it("reaps an idle session after the timeout and brings it back with its context", async () => {
    const clock = new ManualClock();
    const { manager } = await managerFor({ clock });
    await manager.deliver(textFrom(JOHN, "John Doe", "remember the word juniper"));
    const pid = manager.status(asChatId(JOHN))!.live!.pid!;

    clock.advance(2 * 60 * MINUTE + MINUTE);
    await waitUntil(() => manager.status(asChatId(JOHN))!.state === "stopped", 15_000, "the reap");
    await waitUntil(() => !isProcessAlive(pid), 15_000, "the reaped CLI to exit");

    const reply = await manager.deliver(
      textFrom(JOHN, "John Doe", "what word did I ask you to remember?"),
    );
    expect(reply.text).toContain("You asked me to remember juniper");
    expect(manager.status(asChatId(JOHN))!.live!.pid).not.toBe(pid);
  });

  it("steers a message sent 100 ms into a running turn into the same session", async () => {
    const { manager } = await managerFor();
    const first = manager.deliver(
      textFrom(JOHN, "John Doe", "[[delay 1500]] remember the word mango"),
    );
    await bed.model.waitForRequests(
      1,
      (request) => request.kind === "main" && request.userTexts.join().includes("mango"),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const pidDuringTurn = manager.status(asChatId(JOHN))!.live!.pid;
    expect(manager.status(asChatId(JOHN))!.state).toBe("busy");
    const second = manager.deliver(
      textFrom(JOHN, "John Doe", "what word did I ask you to remember?"),
    );

    const [firstReply, secondReply] = await Promise.all([first, second]);
    expect(firstReply.text).toContain("remember mango");
    expect(secondReply.text).toContain("You asked me to remember mango");
    expect(secondReply.agentSessionId).toBe(firstReply.agentSessionId);
    expect(manager.status(asChatId(JOHN))!.live!.pid).toBe(pidDuringTurn);
    const last = bed.model.mainRequests().at(-1)!;
    expect(last.userTexts.join("\n")).toContain("mango");
    expect(last.userTexts.join("\n")).toContain("what word did I ask you to remember?");
  });

  it("falls back to a fresh session when the SDK does not know the resume id, keeping the message", async () => {
    const unknownId = "0b6a4f7e-3c1d-4e55-9a8b-2f1e0d9c8b7a";
    await mkdir(path.dirname(registryPath(bed.home)), { recursive: true });
    await writeFile(
      registryPath(bed.home),
      JSON.stringify({
        [JOHN]: {
          session_name: "john-doe",
          contact_name: "John Doe",
          tier: "favorite",
          session_id: unknownId,
          created_at: "2026-01-01T00:00:00.000Z",
          last_message_time: "2026-01-02T00:00:00.000Z",
          chat_kind: "individual",
          channel: "http",
          previous_session_ids: [],
          turns: 3,
          errors: 0,
          restarts: 0,
        },
      }),
    );
    const { manager, registry } = await managerFor();
    const reply = await manager.deliver(textFrom(JOHN, "John Doe", "tell me about granite"));
    expect(reply.isError).toBe(false);
    expect(reply.text).toContain("granite");
    const entry = registry.get(asChatId(JOHN))!;
    expect(entry.session_id).not.toBe(unknownId);
    expect(reply.agentSessionId).toBe(entry.session_id);
    expect(entry.previous_session_ids.map((previous) => previous.session_id)).toContain(unknownId);
  });

  it("delivers contact text verbatim: no @file expansion, no slash commands", async () => {
    const folder = path.join(bed.home, "transcripts", "john-doe");
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, "secret.txt"), "TOP-SECRET-CONTENT-42");
    const { manager } = await managerFor();

    const reply = await manager.deliver(textFrom(JOHN, "John Doe", "summarise @secret.txt for me"));
    expect(reply.text).toContain("@secret.txt");
    const slash = await manager.deliver(textFrom(JOHN, "John Doe", "/clear"));
    expect(slash.text).toContain("/clear");

    const sent = bed.model
      .mainRequests()
      .map((request) => JSON.stringify(request.body))
      .join("\n");
    expect(sent).not.toContain("TOP-SECRET-CONTENT-42");
    // /clear would have wiped the context; the session still remembers both earlier turns.
    const after = await manager.deliver(textFrom(JOHN, "John Doe", "anything else"));
    expect(after.text).toContain("Reply to message 3");
  });

  it("shows the model only the tools the tier allows, and serves send_message for the chat's own use", async () => {
    const interim: { chatId: string; text: string }[] = [];
    const { manager } = await managerFor({
      policy: {
        allowedTools: ["Read", "mcp__dispatch__send_message"],
        disallowedTools: [],
        permissionMode: "dontAsk",
      },
      sendInterim: (chatId, text) => {
        interim.push({ chatId, text });
        return Promise.resolve();
      },
    });
    const reply = await manager.deliver(
      textFrom(JOHN, "John Doe", '[[tool mcp__dispatch__send_message {"text":"on my way"}]]'),
    );
    expect(interim).toEqual([{ chatId: JOHN, text: "on my way" }]);
    expect(reply.text).toContain("Tool mcp__dispatch__send_message returned");

    const toolNames = new Set(
      bed.model
        .mainRequests()
        .flatMap((request) =>
          ((request.body as { tools?: { name: string }[] }).tools ?? []).map((tool) => tool.name),
        ),
    );
    expect(toolNames.has("Read")).toBe(true);
    for (const forbidden of ["Bash", "Write", "Edit", "WebFetch"])
      expect(toolNames.has(forbidden)).toBe(false);
  });

  it("never lets one contact's agent read another contact's folder", async () => {
    const transcripts = path.join(bed.home, "transcripts");
    await mkdir(path.join(transcripts, "jane-roe"), { recursive: true });
    await writeFile(path.join(transcripts, "jane-roe", "diary.txt"), "JANE-PRIVATE-NOTE");
    const { manager } = await managerFor({
      policy: {
        allowedTools: ["Read", "Glob", "Grep"],
        disallowedTools: [],
        permissionMode: "dontAsk",
      },
    });
    const janeFile = path.join(transcripts, "jane-roe", "diary.txt");

    const read = await manager.deliver(
      textFrom(JOHN, "John Doe", `[[tool Read {"file_path":"${janeFile}"}]]`),
    );
    const grep = await manager.deliver(
      textFrom(JOHN, "John Doe", `[[tool Grep {"pattern":"PRIVATE","path":"${transcripts}"}]]`),
    );
    // In John's folder once it is his (a folder made before would not be given to him).
    await writeFile(path.join(transcripts, "john-doe", "notes.txt"), "JOHN-OWN-NOTE");
    const own = await manager.deliver(
      textFrom(JOHN, "John Doe", '[[tool Read {"file_path":"notes.txt"}]]'),
    );

    // Refused by the tier's folder limit (`permissions.blockReadsOutsideWorkingDirectories`).
    expect(read.text).toContain("Tool Read returned an error");
    expect(grep.text).toContain("Tool Grep returned an error");
    expect(own.text).toContain("JOHN-OWN-NOTE");
    const sent = bed.model
      .mainRequests()
      .map((request) => JSON.stringify(request.body))
      .join("\n");
    expect(sent).not.toContain("JANE-PRIVATE-NOTE");
    expect(sent).toContain("blocks reads outside the working directories");
  });

  it("interrupts a turn that runs past the turn timeout, and the session answers the next message", async () => {
    const clock = new ManualClock();
    const { manager } = await managerFor({ clock, manager: { turnTimeoutMs: 60_000 } });
    const started = Date.now();
    const stuck = manager.deliver(textFrom(JOHN, "John Doe", "[[delay 30000]] this will hang"));
    await bed.model.waitForRequests(1, (request) =>
      request.userTexts.join().includes("this will hang"),
    );

    clock.advance(60_000);
    const reply = await stuck;
    expect(Date.now() - started).toBeLessThan(25_000);
    expect(reply.isError).toBe(true);

    const next = await manager.deliver(textFrom(JOHN, "John Doe", "tell me about hazel"));
    expect(next.isError).toBe(false);
    expect(next.text).toContain("hazel");
  });

  it("quarantines a chat whose agent keeps dying, keeping its message until an operator restart", async () => {
    const clock = new ManualClock();
    const { manager } = await managerFor({ clock, manager: { maxRestarts: 2 } });
    const outcome = manager
      .deliver(textFrom(JOHN, "John Doe", "[[delay 8000]] remember the word lichen"))
      .catch((error: unknown) => error);
    for (let kill = 0; kill < 3; kill += 1) {
      await waitUntil(
        () => manager.status(asChatId(JOHN))?.live?.processAlive === true,
        15_000,
        "a live agent",
      );
      process.kill(-manager.status(asChatId(JOHN))!.live!.pid!, "SIGKILL");
      await waitUntil(
        () => manager.status(asChatId(JOHN))!.state !== "busy",
        15_000,
        "the crash to be seen",
      );
      clock.advance(60_000);
    }
    await waitUntil(
      () => manager.status(asChatId(JOHN))!.state === "quarantined",
      15_000,
      "quarantine",
    );
    expect(await outcome).toMatchObject({ code: "quarantined" });
    expect(manager.status(asChatId(JOHN))!.queued).toBe(1);

    await manager.restart(asChatId(JOHN));
    const recall = await manager.deliver(
      textFrom(JOHN, "John Doe", "what word did I ask you to remember?"),
    );
    expect(recall.text).toContain("You asked me to remember lichen");
  });
});
