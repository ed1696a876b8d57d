import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

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

  it("names a malformed address", () => {
    expect(() => loadConfig({ BULKHEAD_GRPC_ADDR: "localhost" })).toThrow(/BULKHEAD_GRPC_ADDR=localhost must be host:port/);
  });
});
