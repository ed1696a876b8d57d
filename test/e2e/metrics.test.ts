import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkRequest, startSidecar, type TestSidecar } from "../support/sidecar.js";
import { testClock } from "../support/test-time.js";
import { parseExposition, type Sample } from "../support/prometheus.js";

// A scrape is what an operator's Prometheus sees: it must parse, use the
// standard names, type counts as counters, and count exactly what happened.

let sidecar: TestSidecar;
beforeAll(async () => {
  sidecar = await startSidecar({ runtime: { clock: testClock() } });
});
afterAll(() => sidecar.close());

const scrape = async () => parseExposition(await fetch(`http://127.0.0.1:${sidecar.httpPort}/metrics`).then((r) => r.text()));
const sum = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((total, s) => total + s.value, 0);

describe("/metrics", () => {
  it("parses, uses the standard process names, and types every bulkhead_*_total as a counter", async () => {
    const { samples, types } = await scrape();
    const names = new Set(samples.map((s) => s.name));
    expect(names.has("process_cpu_seconds_total")).toBe(true);
    expect(names.has("nodejs_eventloop_lag_seconds")).toBe(true);
    expect([...names].filter((n) => n.includes("process_process") || n.startsWith("bulkhead_process_"))).toEqual([]);
    // Ours; prom-client's standard nodejs_active_*_total are gauges by its own (standard) naming.
    const totalsNotCounters = [...types].filter(([name, type]) => name.startsWith("bulkhead_") && name.endsWith("_total") && type !== "counter");
    expect(totalsNotCounters).toEqual([]);
    // No tenant ids in labels: the demo tenants' ids appear in no series.
    expect(samples.filter((s) => Object.values(s.labels).some((v) => v.startsWith("ten_")))).toEqual([]);
  });

  it("has no replication series in single-node mode", async () => {
    expect((await scrape()).samples.filter((s) => s.name.startsWith("bulkhead_replication_"))).toEqual([]);
  });

  it("counts exactly the calls made, by method, status and result", async () => {
    const before = await scrape();
    const allowed = 7;
    const denied = 5;
    for (let i = 0; i < allowed; i++) await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read"));
    for (let i = 0; i < denied; i++) await sidecar.check(checkRequest("ten_acme", "usr_alice", "projects.read", "ten_globex"));
    await sidecar.batchCheck({ checks: [checkRequest("ten_acme", "usr_alice", "projects.read"), checkRequest("ten_acme", "usr_alice", "projects.read")] });
    await sidecar.check({ action: "projects.read" }).catch(() => undefined); // no principal: INVALID_ARGUMENT
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => sum(after.samples, name, labels) - sum(before.samples, name, labels);

    const check = "/bulkhead.v1.DecisionService/Check";
    expect(delta("bulkhead_grpc_requests_total", { method: check, code: "OK" })).toBe(allowed + denied);
    expect(delta("bulkhead_grpc_requests_total", { method: check, code: "INVALID_ARGUMENT" })).toBe(1);
    expect(delta("bulkhead_grpc_requests_total", { method: "/bulkhead.v1.DecisionService/BatchCheck", code: "OK" })).toBe(1);
    expect(delta("bulkhead_decision_duration_seconds_count", { rpc: "Check", result: "allow" })).toBe(allowed);
    expect(delta("bulkhead_decision_duration_seconds_count", { rpc: "Check", result: "deny" })).toBe(denied);
    expect(delta("bulkhead_decision_duration_seconds_count", { rpc: "BatchCheck", result: "answered" })).toBe(1);
    expect(delta("bulkhead_decisions_total", { allow: "true" })).toBe(allowed + 2);
    expect(delta("bulkhead_decisions_total", { allow: "false" })).toBe(denied);
    expect(delta("bulkhead_context_cache_lookups_total")).toBeGreaterThanOrEqual(allowed + denied + 2);
    sidecar.bulkhead.decisionLog.flush();
    expect(sum((await scrape()).samples, "bulkhead_audit_written_total") - sum(before.samples, "bulkhead_audit_written_total")).toBe(allowed + denied + 2);
    expect(sum(after.samples, "bulkhead_policy_info", { revision: sidecar.bulkhead.policies.revision! })).toBe(1);
  });
});
