import cluster from "node:cluster";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { DecisionLog, DropCause } from "./audit/decision-log.js";
import type { DecisionSink } from "./audit/decision-sinks.js";
import type { PolicyManager } from "./engine/policy-manager.js";
import type { ChangeTracker } from "./store/change-tracker.js";

export interface Metrics {
  registry: Registry;
  decisions: Counter<"allow">;
  decisionErrors: Counter<"code">;
  billingEvents: Counter<"outcome" | "type">;
  /** OFREP requests answered 429 because their caller token's rate was spent. */
  ofrepRateLimited: Counter;
  /** Every gRPC call, by full method and final status name (OK, INVALID_ARGUMENT, ...). */
  rpcRequests: Counter<"method" | "code">;
  rpcDuration: Histogram<"method" | "code">;
  /** DecisionService calls, by RPC and result (allow, deny, answered, or the status name). */
  decisionDuration: Histogram<"rpc" | "result">;
}

/** What the metrics read at scrape time from the parts they describe. */
export interface MetricSources {
  policies: PolicyManager;
  decisionLog: DecisionLog;
  tracker: ChangeTracker;
  contextCache?: { readonly cacheUsage: { entries: number; bytes: number; hits: number; misses: number } };
  /** The decision cache (ADR 68); absent when turned off, and so are its series. */
  decisionCache?: { readonly usage: { entries: number; bytes: number; hits: number; misses: number } };
  /** The decision-log sinks (ADR 71); none configured, no series. */
  sinks?: readonly DecisionSink[];
  /** The break-glass trail (ADR 54): committed break_glass.* audit rows by event. */
  breakGlass?: { counts(): [{ event: string }, number][] };
  /** Replicated mode's change log; absent single-node, and so are its series. */
  replication?: { readonly stats: { applied: number; lagEntries: number; lagSeconds: number; conflicts: number; catchUpTarget: number; ready: boolean } };
}

/** Latency buckets from 50 µs to 2.5 s: decisions are sub-millisecond, waits on min_revision are not. */
const DURATION_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * Prometheus metrics, named bulkhead_<area>_<thing>_<unit|total>, beside
 * the standard `process_*` and `nodejs_*` series. Component state (policy
 * status, audit journal, store revision, cache counts) is read at scrape
 * time rather than pushed from the hot path; a monotonic count read that way
 * is still exposed as a counter. No series carries a tenant id (cardinality);
 * tenant dimensions belong in logs and traces. Under `serve --workers` every
 * series carries the answering worker's `worker` label.
 */
export function createMetrics(parts: MetricSources): Metrics {
  const registry = new Registry();
  if (cluster.isWorker) registry.setDefaultLabels({ worker: String(cluster.worker?.id ?? process.pid) });
  collectDefaultMetrics({ register: registry });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  const countedElsewhere = <L extends string>(name: string, help: string, labelNames: L[], read: () => [Partial<Record<L, string>>, number][]) =>
    new Counter({
      name, help, labelNames, registers: [registry],
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.inc(labels, value);
      },
    });
  const single = (read: () => number) => () => [[{}, read()]] as [Record<string, string>, number][];

  gauge("bulkhead_policy_degraded", "1 while a rejected or rolled-back bundle left an older one serving", () =>
    parts.policies.status.state === "ready" ? 0 : 1,
  );
  new Gauge({
    name: "bulkhead_policy_info", help: "1, labelled with the revision of the bundle serving", labelNames: ["revision"], registers: [registry],
    collect() {
      this.reset();
      this.set({ revision: parts.policies.status.revision ?? "none" }, 1);
    },
  });
  countedElsewhere("bulkhead_policy_reloads_total", "policy bundles loaded", [], single(() => parts.policies.status.reloads));
  countedElsewhere("bulkhead_policy_rejected_total", "policy bundles rejected", [], single(() => parts.policies.status.rejected));
  countedElsewhere("bulkhead_policy_rollbacks_total", "policy bundles swapped in and then rolled back by the watchdog", [], single(() => parts.policies.status.rollbacks));
  gauge("bulkhead_audit_pending_records", "decision records in the journal, not yet in the decision_log table", () => parts.decisionLog.stats.pending);
  countedElsewhere("bulkhead_audit_written_total", "decision records this process moved into the decision_log table", [], single(() => parts.decisionLog.stats.written));
  countedElsewhere("bulkhead_audit_dropped_total", "decision records this process lost, by cause", ["cause"], () =>
    Object.entries(parts.decisionLog.stats.droppedBy).map(([cause, n]) => [{ cause: cause as DropCause }, n]),
  );
  countedElsewhere(
    "bulkhead_audit_import_failures_total", "times the journal could not be moved into the table (store locked or failing); the journal kept the records", [],
    single(() => parts.decisionLog.stats.importFailures),
  );
  gauge("bulkhead_store_revision", "newest store revision this process has seen", () => parts.tracker.revision);
  const cache = parts.contextCache;
  if (cache) {
    countedElsewhere("bulkhead_context_cache_lookups_total", "member-context lookups, answered from the cache (hit) or the store (miss)", ["result"], () => [
      [{ result: "hit" }, cache.cacheUsage.hits],
      [{ result: "miss" }, cache.cacheUsage.misses],
    ]);
    gauge("bulkhead_context_cache_bytes", "estimated bytes held by the member-context cache", () => cache.cacheUsage.bytes);
  }
  const decisions = parts.decisionCache;
  if (decisions) {
    countedElsewhere("bulkhead_decision_cache_lookups_total", "policy answers of non-consuming Checks, from the decision cache (hit) or evaluated (miss)", ["result"], () => [
      [{ result: "hit" }, decisions.usage.hits],
      [{ result: "miss" }, decisions.usage.misses],
    ]);
    gauge("bulkhead_decision_cache_bytes", "estimated bytes held by the decision cache", () => decisions.usage.bytes);
  }
  const sinks = parts.sinks ?? [];
  if (sinks.length > 0) {
    countedElsewhere("bulkhead_decision_sink_sent_total", "decision events a sink delivered", ["sink"], () => sinks.map((s) => [{ sink: s.name }, s.stats.sent]));
    countedElsewhere("bulkhead_decision_sink_dropped_total", "decision events a sink gave up on, by cause (buffer_full, rejected, failed); the table still holds them", ["sink", "cause"], () =>
      sinks.flatMap((s) => Object.entries(s.stats.dropped).map(([cause, n]) => [{ sink: s.name, cause }, n] as [Record<string, string>, number])),
    );
    new Gauge({
      name: "bulkhead_decision_sink_buffered", help: "decision events a sink holds, not yet delivered", labelNames: ["sink"], registers: [registry],
      collect() {
        this.reset();
        for (const s of sinks) this.set({ sink: s.name }, s.stats.buffered);
      },
    });
  }
  const breakGlass = parts.breakGlass;
  if (breakGlass) {
    countedElsewhere("bulkhead_break_glass_total", "break-glass events in the admin audit (open, used, expired), read from the store: the same on every replicated sidecar", ["event"], () =>
      breakGlass.counts());
  }
  const replication = parts.replication;
  if (replication) {
    const stats = () => replication.stats;
    gauge("bulkhead_replication_applied_sequence", "the change log's stream sequence this sidecar has applied through (its store revision)", () => stats().applied);
    gauge("bulkhead_replication_lag_entries", "entries the stream holds that this sidecar has not applied yet, as last heard from NATS", () => stats().lagEntries);
    gauge("bulkhead_replication_lag_seconds", "0 when caught up; else seconds since the stream stored the newest entry applied here", () => stats().lagSeconds);
    countedElsewhere("bulkhead_replication_conflicts_total", "keyed appends (usage on one meter) another sidecar won first, decided again on newer state", [], single(() => stats().conflicts));
    gauge("bulkhead_replication_catchup_target_sequence", "the stream's last sequence when this sidecar started: it is ready once it has applied this far", () => stats().catchUpTarget);
    gauge("bulkhead_replication_catchup_remaining_entries", "entries left before the start-up catch-up is done (0 once caught up)", () => Math.max(0, stats().catchUpTarget - stats().applied));
    gauge("bulkhead_replication_ready", "1 once caught up and applying; 0 while catching up or after the applier stopped", () => (stats().ready ? 1 : 0));
  }

  return {
    registry,
    decisions: new Counter({ name: "bulkhead_decisions_total", help: "decisions answered", labelNames: ["allow"], registers: [registry] }),
    decisionErrors: new Counter({ name: "bulkhead_decision_errors_total", help: "decision calls that failed", labelNames: ["code"], registers: [registry] }),
    billingEvents: new Counter({
      name: "bulkhead_billing_events_total",
      help: "Stripe webhook deliveries by outcome (applied, duplicate, stale, unmapped, unhandled, bad_signature, failed) and event type (unverified for a bad signature)",
      labelNames: ["outcome", "type"],
      registers: [registry],
    }),
    ofrepRateLimited: new Counter({
      name: "bulkhead_ofrep_rate_limited_total", help: "OFREP requests answered 429 (the caller token's BULKHEAD_OFREP_RATE_PER_MINUTE was spent)",
      registers: [registry],
    }),
    rpcRequests: new Counter({ name: "bulkhead_grpc_requests_total", help: "gRPC calls by method and final status", labelNames: ["method", "code"], registers: [registry] }),
    rpcDuration: new Histogram({
      name: "bulkhead_grpc_duration_seconds", help: "gRPC call time, from the call's start to its status", labelNames: ["method", "code"],
      buckets: DURATION_BUCKETS, registers: [registry],
    }),
    decisionDuration: new Histogram({
      name: "bulkhead_decision_duration_seconds", help: "DecisionService call time by RPC and result", labelNames: ["rpc", "result"],
      buckets: DURATION_BUCKETS, registers: [registry],
    }),
  };
}
