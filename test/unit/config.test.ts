import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { parseWorkers } from "../../src/cli/serve-cluster.js";

describe("loadConfig", () => {
  it("defaults to loopback ports and ./data/bulkhead.db", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ grpcAddr: "127.0.0.1:50051", httpAddr: "127.0.0.1:8080", demo: false, callerTokens: [] });
    expect(config.dbPath).toMatch(/data\/bulkhead\.db$/);
  });

  it("lets flags win over the environment", () => {
    const config = loadConfig({ BULKHEAD_GRPC_ADDR: "127.0.0.1:1" }, { "grpc-addr": "127.0.0.1:2", demo: true });
    expect(config.grpcAddr).toBe("127.0.0.1:2");
    expect(config.demo).toBe(true);
  });

  it("refuses a non-loopback bind without caller tokens", () => {
    expect(() => loadConfig({ BULKHEAD_GRPC_ADDR: "0.0.0.0:50051" })).toThrow(ConfigError);
    expect(() => loadConfig({ BULKHEAD_HTTP_ADDR: "10.0.0.5:8080" })).toThrow(/BULKHEAD_CALLER_TOKENS/);
  });

  it("allows a non-loopback bind with caller tokens", () => {
    const config = loadConfig({ BULKHEAD_GRPC_ADDR: "0.0.0.0:50051", BULKHEAD_HTTP_ADDR: "[::]:8080", BULKHEAD_CALLER_TOKENS: "a, b" });
    expect(config.callerTokens).toEqual(["a", "b"]);
  });

  it("takes whole numbers only in decimal digits, naming the variable", () => {
    for (const value of ["0x10", "1e3", " 7", "7 ", "-1", "7.5", "0b11", "+7"]) {
      expect(() => loadConfig({ BULKHEAD_PAST_DUE_GRACE_DAYS: value }), value).toThrow(/BULKHEAD_PAST_DUE_GRACE_DAYS=.* must be a whole number from 0 to 365 in decimal digits/);
    }
    expect(loadConfig({ BULKHEAD_PAST_DUE_GRACE_DAYS: "16" }).pastDueGraceDays).toBe(16);
    expect(() => parseWorkers("0x2")).toThrow(/--workers/);
    expect(parseWorkers("2")).toBe(2);
  });

  it("names a malformed address", () => {
    expect(() => loadConfig({ BULKHEAD_GRPC_ADDR: "localhost" })).toThrow(/BULKHEAD_GRPC_ADDR=localhost must be host:port/);
  });
});
