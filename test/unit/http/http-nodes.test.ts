/** `GET /v1/nodes`: the control plane's nodes as JSON, behind the bearer token like all of /v1. */
import { afterEach, describe, expect, it } from "vitest";
import type { NodeView } from "../../../src/channels/http/control-plane.js";
import { DispatchError } from "../../../src/utils/errors.js";
import { closeApis, startApi, type ErrorJson } from "./http-harness.js";

afterEach(closeApis);

const NODE: NodeView = {
  node_id: "mac-mini:7878",
  address: "http://127.0.0.1:7878",
  state: "serving",
  started_at: "2026-02-07T12:55:00.000Z",
  last_heartbeat_at: "2026-02-07T14:59:57.000Z",
  heartbeat_age_seconds: 3,
  lease: "alive",
  pool: { live: 1, total: 32 },
  channels: ["http"],
  chats: 2,
  self: true,
};

describe("GET /v1/nodes", () => {
  it("answers every node the control plane lists", async () => {
    const api = await startApi();
    api.control.nodes = [NODE, { ...NODE, node_id: "box-2:7878", self: false, state: "gone" }];
    const response = await api.call("/v1/nodes");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual(api.control.nodes);
  });

  it("wants the bearer token", async () => {
    const api = await startApi();
    api.control.nodes = [NODE];
    const response = await api.call("/v1/nodes", { headers: { Authorization: "Bearer wrong" } });
    expect(response.status).toBe(401);
    expect(((await response.json()) as ErrorJson).error.code).toBe("unauthorized");
  });

  it("refuses other methods with 405 and Allow", async () => {
    const api = await startApi();
    const response = await api.call("/v1/nodes", { method: "POST" });
    expect(response.status).toBe(405);
    expect(response.headers.get("Allow")).toBe("GET, HEAD");
  });

  it("passes a storage failure on with its code", async () => {
    const api = await startApi();
    api.control.failures.set(
      "listNodes",
      new DispatchError("database_unreachable", "PostgreSQL does not answer; start it."),
    );
    const response = await api.call("/v1/nodes");
    const body = (await response.json()) as ErrorJson;
    expect(body.error).toEqual({
      code: "database_unreachable",
      message: "PostgreSQL does not answer; start it.",
    });
  });
});

describe("GET /v1/sessions", () => {
  it("names each session's owner as node", async () => {
    const api = await startApi();
    api.control.addSession({ chat_id: "+15551234567", node: "mac-mini:7878" });
    const list = (await (await api.call("/v1/sessions")).json()) as { node: string }[];
    expect(list.map((session) => session.node)).toEqual(["mac-mini:7878"]);
    const one = (await (await api.call("/v1/sessions/%2B15551234567")).json()) as {
      node: string;
    };
    expect(one.node).toBe("mac-mini:7878");
  });
});
