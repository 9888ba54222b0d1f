/**
 * A session that comes back to a node it ran on before (issue 14): two daemons on one PostgreSQL
 * database; the node that runs a chat is killed (kill -9 of its process group), the other takes
 * the chat over and answers more turns, the first is started again on its HOME (which still
 * holds its older copy of the session's files), the second stops gracefully, and the chat goes
 * back to the first. It must resume with the whole conversation, under the same session id.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { startCluster, type Cluster, type ClusterNode } from "../support/cluster.js";
import { createTestDatabase } from "../support/postgres-server.js";

const CHAT = "+15553100001";

let model: StandInModel;
let cluster: Cluster;

beforeAll(async () => {
  const databaseUrl = await createTestDatabase();
  model = await startStandInModel();
  cluster = await startCluster({
    nodes: 2,
    databaseUrl,
    modelUrl: model.url,
    contacts: { contacts: [{ name: "Return Contact", tier: "favorite", handles: [CHAT] }] },
    config: { spareProcesses: 0, cluster: { leaseSeconds: 3 } },
  });
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
  await model?.close();
});

interface Reply {
  session_id: string;
  reply: string | null;
}

async function send(node: ClusterNode, text: string): Promise<Reply> {
  const answer = await node.api("POST", "/v1/messages", { chat_id: CHAT, text, wait: true });
  expect(answer.status, `${node.id}: ${JSON.stringify(answer.json)}`).toBe(200);
  return answer.json as Reply;
}

async function ownerOf(node: ClusterNode): Promise<string | null> {
  return (await node.session(CHAT)).node;
}

describe("a session back on a node it ran on before", () => {
  it("resumes with its whole context and its session id", async () => {
    const [one, two] = cluster.nodes as [ClusterNode, ClusterNode];
    const first = await send(one, "remember the word saffron");
    expect(first.reply).toContain("I will remember saffron");
    const runs = (await ownerOf(one)) === one.id ? one : two;
    const other = runs === one ? two : one;

    // The node that runs it dies; the other takes it over and answers the next turn.
    await runs.kill();
    const second = await send(other, "what word did I ask you to remember?");
    expect(second.reply).toContain("You asked me to remember saffron.");
    expect(second.session_id).toBe(first.session_id);
    expect(await ownerOf(other)).toBe(other.id);
    const more = await send(other, "ret01-m0001 a turn on the other node");
    expect(more.session_id).toBe(first.session_id);

    // The first comes back on its HOME, the other stops: the chat goes back to the first.
    await runs.start();
    expect(await other.stop("SIGTERM")).toBe(0);
    const back = await send(runs, "what word did I ask you to remember?");
    expect(back.reply).toContain("You asked me to remember saffron.");
    expect(back.session_id).toBe(first.session_id);
    const markers = await send(runs, "[[markers]]");
    expect(markers.reply).toContain("Markers answered: ret01-m0001.");
  }, 300_000);
});
