/**
 * A CLI killed in the middle of a turn, while the daemon lives on: the health check restarts the
 * session with resume, and the message the dead turn was answering is answered by the new one.
 */
import { expect, it } from "vitest";
import { ManualClock } from "../support/manual-clock.js";
import { asChatId } from "../../src/utils/ids.js";
import { createRealManager, textFrom, waitUntil } from "../support/real-manager.js";
import { useStandInHome } from "../support/stand-in-home.js";

const JOHN = asChatId("+15551234567");
const MINUTE = 60_000;

const bed = useStandInHome();

it("answers the message of a turn whose CLI was killed mid-turn, once, after the restart", async () => {
  const clock = new ManualClock();
  const real = await createRealManager({ home: bed.home, modelUrl: bed.model.url, clock });
  bed.closers.push(() => real.close());
  const { manager } = real;
  await manager.deliver(textFrom(JOHN, "John Doe", "hello"));
  const askedBefore = bed.model.mainRequests().length;

  const reply = manager.deliver(
    textFrom(JOHN, "John Doe", "[[delay 6000]] remember the word basalt"),
  );
  const asked = () =>
    bed.model
      .mainRequests()
      .slice(askedBefore)
      .filter((request) => request.userTexts.at(-1)?.includes("basalt") === true);
  // The turn is under way: the model has the message, and the CLI has written it down.
  await waitUntil(() => asked().length === 1, 20_000, "the model to be asked");
  const killed = manager.status(JOHN)!.live!;
  process.kill(-killed.pid!, "SIGKILL");
  await waitUntil(() => manager.status(JOHN)!.state !== "busy", 15_000, "the crash to be seen");
  clock.advance(5 * MINUTE); // the health check

  const answer = await reply;
  expect(answer.isError).toBe(false);
  expect(answer.text).toContain("I will remember basalt");
  expect(answer.agentSessionId).toBe(killed.agentSessionId);
  const status = manager.status(JOHN)!;
  expect(status.restarts).toBe(1);
  expect(status.queued).toBe(0);
  // Asked once by the killed turn and once by the restarted one; never a third time.
  expect(asked()).toHaveLength(2);
});
