import { describe, expect, it } from "vitest";
import { ConfigInvalidError, parseConfig } from "../../../src/config/load-config.js";

const context = {
  homeDir: "/home/ada",
  platform: "linux" as const,
  totalMemoryBytes: 4 * 1024 ** 3,
  file: "/home/ada/dispatch/config.json",
};

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, context);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigInvalidError);
    return (error as ConfigInvalidError).problems.map(String);
  }
  throw new Error("expected the config to be refused");
}

describe("channels.signal", () => {
  it("is off by default, pointing at signal-cli's default --http address", () => {
    expect(parseConfig("{}", context).channels.signal).toEqual({
      enabled: false,
      url: "http://127.0.0.1:8080",
      account: "",
    });
  });

  it("takes a URL (trailing slashes dropped) and an account", () => {
    const config = parseConfig(
      '{ "channels": { "signal": { "enabled": true, "url": "http://localhost:9090/", "account": "+15550000000" } } }',
      context,
    );
    expect(config.channels.signal).toEqual({
      enabled: true,
      url: "http://localhost:9090",
      account: "+15550000000",
    });
  });

  it("names the missing account when the channel is on", () => {
    const problems = problemsOf('{ "channels": { "signal": { "enabled": true } } }');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain("`channels.signal.account` to be set");
    expect(problems[0]).toContain('"+15551234567"');
  });

  it("names the key, the value and the expectation for a bad URL or account", () => {
    const problems = problemsOf(
      '{ "channels": { "signal": { "url": "localhost:8080", "account": "5551234567" } } }',
    );
    expect(problems).toHaveLength(2);
    expect(problems.join("\n")).toContain("`channels.signal.url`");
    expect(problems.join("\n")).toContain("localhost:8080");
    expect(problems.join("\n")).toContain("an http:// URL of signal-cli's `daemon --http` address");
    expect(problems.join("\n")).toContain("`channels.signal.account`");
    expect(problems.join("\n")).toContain("phone number with its country code");
  });

  it("refuses keys it does not know", () => {
    const problems = problemsOf('{ "channels": { "signal": { "number": "+15550000000" } } }');
    expect(problems.join("\n")).toContain("Unknown key `channels.signal.number`");
  });
});
