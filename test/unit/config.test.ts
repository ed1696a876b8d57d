import { describe, expect, it } from "vitest";
import { ConfigError, ENV_VARS, loadConfig, OTHER_ENV_VARS } from "../../src/config.js";
import { USAGE } from "../../src/cli/usage.js";
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

  it("takes the policy evaluation pool and budget within bounds, defaulting to 2 workers and 250 ms", () => {
    expect(loadConfig({})).toMatchObject({ policyWorkers: 2, policyBudgetMs: 250 });
    expect(loadConfig({ BULKHEAD_POLICY_WORKERS: "4", BULKHEAD_POLICY_BUDGET_MS: "100" })).toMatchObject({ policyWorkers: 4, policyBudgetMs: 100 });
    for (const value of ["0", "17", "0x2", "two"]) {
      expect(() => loadConfig({ BULKHEAD_POLICY_WORKERS: value }), value).toThrow(/BULKHEAD_POLICY_WORKERS=.* must be a whole number from 1 to 16/);
    }
    for (const value of ["9", "10001", "1e3", "-250"]) {
      expect(() => loadConfig({ BULKHEAD_POLICY_BUDGET_MS: value }), value).toThrow(/BULKHEAD_POLICY_BUDGET_MS=.* must be a whole number from 10 to 10000/);
    }
  });

  it("takes the heap mode from the flag or the environment, defaulting to size, and names a bad value", () => {
    expect(loadConfig({}).heapMode).toBe("size");
    expect(loadConfig({ BULKHEAD_HEAP_MODE: "speed" }).heapMode).toBe("speed");
    expect(loadConfig({ BULKHEAD_HEAP_MODE: "speed" }, { "heap-mode": "size" }).heapMode).toBe("size");
    for (const value of ["fast", "SIZE", "size "]) {
      expect(() => loadConfig({ BULKHEAD_HEAP_MODE: value }), value).toThrow(/BULKHEAD_HEAP_MODE: .* must be one of size, speed/);
    }
  });

  it("takes the log level from the flag or the environment, defaulting to info, and names a bad value", () => {
    expect(loadConfig({}).logLevel).toBe("info");
    expect(loadConfig({ BULKHEAD_LOG_LEVEL: "warn" }).logLevel).toBe("warn");
    expect(loadConfig({ BULKHEAD_LOG_LEVEL: "DEBUG" }).logLevel).toBe("debug");
    expect(loadConfig({ BULKHEAD_LOG_LEVEL: "warn" }, { "log-level": "error" }).logLevel).toBe("error");
    for (const value of ["loud", "warning", "3"]) {
      expect(() => loadConfig({ BULKHEAD_LOG_LEVEL: value }), value).toThrow(/BULKHEAD_LOG_LEVEL \(--log-level\): .* must be one of fatal, error, warn, info, debug, trace, silent/);
    }
  });

  it("takes the deployment sha as a sha or tag, never free text that could forge a log field", () => {
    expect(loadConfig({}).deploymentSha).toBeUndefined();
    expect(loadConfig({ BULKHEAD_DEPLOYMENT_SHA: "3f9c2ab" }).deploymentSha).toBe("3f9c2ab");
    expect(loadConfig({ BULKHEAD_DEPLOYMENT_SHA: "v1.4.0-rc.1" }).deploymentSha).toBe("v1.4.0-rc.1");
    for (const value of ['abc","level":"fatal', "a b", "x".repeat(65)]) {
      expect(() => loadConfig({ BULKHEAD_DEPLOYMENT_SHA: value }), value).toThrow(/BULKHEAD_DEPLOYMENT_SHA=.* must be 1 to 64 letters/);
      }
    });

  it("takes the decision cache budget in MiB from the flag or the environment, defaulting to 16, 0 for off, and names a bad value", () => {
    expect(loadConfig({}).decisionCacheMb).toBe(16);
    expect(loadConfig({ BULKHEAD_DECISION_CACHE_MB: "0" }).decisionCacheMb).toBe(0);
    expect(loadConfig({ BULKHEAD_DECISION_CACHE_MB: "64" }, { "decision-cache-mb": "8" }).decisionCacheMb).toBe(8);
    for (const value of ["-1", "1025", "1.5", "16MB", "sixteen"]) {
      expect(() => loadConfig({ BULKHEAD_DECISION_CACHE_MB: value }), value).toThrow(/BULKHEAD_DECISION_CACHE_MB=.* must be a whole number from 0 to 1024/);
    }
  });

  it("takes the OFREP rate per caller token, defaulting to 60000 a minute, 0 for no limit", () => {
    expect(loadConfig({}).ofrepRatePerMinute).toBe(60_000);
    expect(loadConfig({ BULKHEAD_OFREP_RATE_PER_MINUTE: "0" }).ofrepRatePerMinute).toBe(0);
    expect(loadConfig({ BULKHEAD_OFREP_RATE_PER_MINUTE: "120" }).ofrepRatePerMinute).toBe(120);
    for (const value of ["-1", "1e3", "60000001", "fast"]) {
      expect(() => loadConfig({ BULKHEAD_OFREP_RATE_PER_MINUTE: value }), value).toThrow(/BULKHEAD_OFREP_RATE_PER_MINUTE=.* must be a whole number from 0 to 60000000/);
    }
  });

  it("names a malformed address", () => {
    expect(() => loadConfig({ BULKHEAD_GRPC_ADDR: "localhost" })).toThrow(/BULKHEAD_GRPC_ADDR=localhost must be host:port/);
  });

  it("stays single-node without BULKHEAD_NATS_URL", () => {
    expect(loadConfig({}).replication).toBeUndefined();
  });

  it("switches to replicated mode from the environment or --nats-url, with documented defaults", () => {
    expect(loadConfig({ BULKHEAD_NATS_URL: "nats://127.0.0.1:4222" }).replication).toEqual({
      natsServers: ["nats://127.0.0.1:4222"], stream: "BULKHEAD", stalenessMs: 5000, replicas: 1, snapshotIntervalSeconds: 600,
    });
    const config = loadConfig(
      { BULKHEAD_NATS_URL: "nats://10.0.0.1:4222", BULKHEAD_NATS_STREAM: "prod-log", BULKHEAD_NATS_STALENESS_MS: "2500", BULKHEAD_NATS_REPLICAS: "3", BULKHEAD_SNAPSHOT_INTERVAL_S: "0" },
      { "nats-url": "nats://127.0.0.1:4222, 127.0.0.1:4223,tls://nats.internal:4222" },
    );
    expect(config.replication).toEqual({
      natsServers: ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223", "tls://nats.internal:4222"],
      stream: "prod-log", stalenessMs: 2500, replicas: 3, snapshotIntervalSeconds: 0,
    });
  });

  it("names the wrong replication setting", () => {
    const url = { BULKHEAD_NATS_URL: "nats://127.0.0.1:4222" };
    expect(() => loadConfig({ BULKHEAD_NATS_URL: "http://127.0.0.1:4222" })).toThrow(/BULKHEAD_NATS_URL: 'http:\/\/127.0.0.1:4222' must use nats:\/\/ or tls:\/\//);
    expect(() => loadConfig({ BULKHEAD_NATS_URL: " , " })).toThrow(/BULKHEAD_NATS_URL=' , ' names no server/);
    expect(() => loadConfig({ BULKHEAD_NATS_URL: "nats://[bad" })).toThrow(/BULKHEAD_NATS_URL: 'nats:\/\/\[bad' is not a URL/);
    expect(() => loadConfig({ ...url, BULKHEAD_NATS_STREAM: "a.b" })).toThrow(/BULKHEAD_NATS_STREAM='a.b'/);
    expect(() => loadConfig({ ...url, BULKHEAD_NATS_STREAM: "log>" })).toThrow(/BULKHEAD_NATS_STREAM/);
    expect(() => loadConfig({ ...url, BULKHEAD_NATS_STALENESS_MS: "0" })).toThrow(/BULKHEAD_NATS_STALENESS_MS=0 must be a whole number from 100 to 600000/);
    expect(() => loadConfig({ ...url, BULKHEAD_NATS_STALENESS_MS: "1.5" })).toThrow(/BULKHEAD_NATS_STALENESS_MS/);
    expect(() => loadConfig({ ...url, BULKHEAD_NATS_REPLICAS: "6" })).toThrow(/BULKHEAD_NATS_REPLICAS=6 must be a whole number from 1 to 5/);
  });

  it("refuses replication settings without BULKHEAD_NATS_URL, so nobody runs single-node by mistake", () => {
    for (const name of ["BULKHEAD_NATS_STREAM", "BULKHEAD_NATS_STALENESS_MS", "BULKHEAD_NATS_REPLICAS"]) {
      expect(() => loadConfig({ [name]: "3" })).toThrow(new RegExp(`${name} is set but BULKHEAD_NATS_URL`));
    }
  });

  it("refuses an unknown BULKHEAD_* variable, suggesting the name it resembles, instead of ignoring a typo", () => {
    expect(() => loadConfig({ BULKHEAD_CALLER_TOKEN: "t" })).toThrow(/unknown environment variable BULKHEAD_CALLER_TOKEN; did you mean BULKHEAD_CALLER_TOKENS\?/);
    expect(() => loadConfig({ BULKHEAD_DB_PATH: "x.db" })).toThrow(/BULKHEAD_DB_PATH; did you mean BULKHEAD_DB\?/);
    expect(() => loadConfig({ BULKHEAD_SOMETHING_ELSE_ENTIRELY: "1" })).toThrow(/unknown environment variable BULKHEAD_SOMETHING_ELSE_ENTIRELY \(bulkhead serve --help/);
    // Variables read elsewhere, and other programs' variables, are fine.
    expect(() => loadConfig({ BULKHEAD_KEY_SECRET: "k", BULKHEAD_WORKERS: "2", BULKHEAD_ADMIN_TOKEN_FILE: "f", NODE_ENV: "production" })).not.toThrow();
  });

  it("leaves tracing off without BULKHEAD_OTLP_ENDPOINT and takes it from the environment or --otlp-endpoint", () => {
    expect(loadConfig({}).tracing).toBeUndefined();
    expect(loadConfig({ BULKHEAD_OTLP_ENDPOINT: "http://collector:4318/v1/traces" }).tracing).toEqual({ endpoint: "http://collector:4318/v1/traces", serviceName: "bulkhead" });
    expect(loadConfig({ BULKHEAD_OTEL_SERVICE_NAME: "env" }, { "otlp-endpoint": "https://otel.example/v1/traces", "otel-service-name": "authz-eu" }).tracing).toEqual({
      endpoint: "https://otel.example/v1/traces",
      serviceName: "authz-eu",
    });
  });

  it("names the tracing variable that is wrong", () => {
    expect(() => loadConfig({ BULKHEAD_OTLP_ENDPOINT: "collector:4318" })).toThrow(/BULKHEAD_OTLP_ENDPOINT: 'collector:4318' must use http/);
    expect(() => loadConfig({ BULKHEAD_OTLP_ENDPOINT: "not a url" })).toThrow(/BULKHEAD_OTLP_ENDPOINT: 'not a url' is not a URL/);
    expect(() => loadConfig({ BULKHEAD_OTLP_ENDPOINT: "grpc://collector:4317" })).toThrow(/BULKHEAD_OTLP_ENDPOINT: .* must use http:\/\/ or https:\/\//);
    expect(() => loadConfig({ BULKHEAD_OTLP_ENDPOINT: "http://user:secret@collector:4318/v1/traces" })).toThrow(/BULKHEAD_OTLP_ENDPOINT: credentials in the URL are refused/);
    expect(() => loadConfig({ BULKHEAD_OTLP_ENDPOINT: "http://c:4318/v1/traces", BULKHEAD_OTEL_SERVICE_NAME: "has space" })).toThrow(/BULKHEAD_OTEL_SERVICE_NAME: 'has space'/);
    expect(() => loadConfig({ BULKHEAD_OTEL_SERVICE_NAME: "bulkhead" })).toThrow(/BULKHEAD_OTEL_SERVICE_NAME is set but BULKHEAD_OTLP_ENDPOINT is not/);
    expect(() => loadConfig({ BULKHEAD_OTLP_ENDPOINT: "ftp://c/x" })).toThrow(ConfigError);
    expect(() => loadConfig({ BULKHEAD_OTLP_ENDPONT: "http://c:4318" })).toThrow(/did you mean BULKHEAD_OTLP_ENDPOINT\?/);
  });

  it("lists every variable in --help (but the cluster's internal one)", () => {
    const missing = [...Object.keys(ENV_VARS), ...OTHER_ENV_VARS].filter((name) => name !== "BULKHEAD_WORKER_OF" && !USAGE.includes(name));
    expect(missing).toEqual([]);
  });
});
