import { describe, expect, it } from "vitest";
import { createHostCheck, hostNameOf } from "../../../src/channels/http/allowed-hosts.js";
import { isHostName } from "../../../src/utils/host-name.js";

describe("hostNameOf", () => {
  it.each([
    ["127.0.0.1", "127.0.0.1"],
    ["127.0.0.1:7878", "127.0.0.1"],
    ["LOCALHOST:7878", "localhost"],
    ["[::1]", "[::1]"],
    ["[::1]:7878", "[::1]"],
    ["dispatch.example.com", "dispatch.example.com"],
  ])("reads %s as %s", (header, name) => {
    expect(hostNameOf(header)).toBe(name);
  });

  it.each([
    undefined,
    "",
    "evil.example@127.0.0.1",
    "127.0.0.1/path",
    "http://127.0.0.1",
    "127.0.0.1:",
    "127.0.0.1:123456",
    "::1",
    "local host",
    "-localhost",
  ])("refuses the malformed header %j", (header) => {
    expect(hostNameOf(header)).toBeUndefined();
  });
});

describe("createHostCheck", () => {
  it("allows only the loopback names by default, whatever the port", () => {
    const check = createHostCheck();
    expect(check.names).toEqual(["127.0.0.1", "localhost", "[::1]"]);
    for (const host of ["127.0.0.1:1", "localhost", "[::1]:7878"])
      expect(check.allows(host)).toBe(true);
    for (const host of ["evil.example", "evil.example:7878", "localhost.evil.example", undefined])
      expect(check.allows(host)).toBe(false);
  });

  it("adds the configured names to the loopback ones, in any case", () => {
    const check = createHostCheck(["Dispatch.Example.com", "localhost"]);
    expect(check.names).toEqual(["127.0.0.1", "localhost", "[::1]", "dispatch.example.com"]);
    expect(check.allows("dispatch.example.com:443")).toBe(true);
    expect(check.allows("DISPATCH.EXAMPLE.COM")).toBe(true);
    expect(check.allows("127.0.0.1")).toBe(true);
    expect(check.allows("example.com")).toBe(false);
  });
});

describe("isHostName", () => {
  it("takes names and addresses, not URLs or ports", () => {
    for (const name of ["dispatch.example.com", "192.168.1.10", "[fd00::1]", "LOCALHOST"])
      expect(isHostName(name), name).toBe(true);
    for (const name of ["https://x.example", "x.example:443", "x.example/", "", "*"])
      expect(isHostName(name), name).toBe(false);
  });
});
