import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { DecisionLog } from "./audit/decision-log.js";
import type { PolicyManager } from "./engine/policy-manager.js";
import type { ChangeTracker } from "./store/change-tracker.js";

export interface Metrics {
  registry: Registry;
  decisions: Counter<"allow">;
  decisionErrors: Counter<"code">;
  billingEvents: Counter<"outcome">;
}

/**
 * Prometheus metrics, named bulkhead_<area>_<thing>_<unit|total>. Component
 * state (policy status, audit buffer, store revision) is read at scrape time
 * rather than pushed from the hot path.
 */
export function createMetrics(parts: { policies: PolicyManager; decisionLog: DecisionLog; tracker: ChangeTracker }): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "bulkhead_process_" });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });

  gauge("bulkhead_policy_degraded", "1 while a rejected or rolled-back bundle left an older one serving", () =>
    parts.policies.status.state === "ready" ? 0 : 1,
  );
  gauge("bulkhead_policy_reloads_total", "policy bundles loaded", () => parts.policies.status.reloads);
  gauge("bulkhead_policy_rejected_total", "policy bundles rejected", () => parts.policies.status.rejected);
  gauge("bulkhead_policy_rollbacks_total", "policy bundles swapped in and then rolled back by the watchdog", () => parts.policies.status.rollbacks);
  gauge("bulkhead_audit_pending_records", "decision records in the journal, not yet in the decision_log table", () => parts.decisionLog.stats.pending);
  gauge("bulkhead_audit_written_total", "decision records this process moved into the decision_log table", () => parts.decisionLog.stats.written);
  gauge("bulkhead_audit_dropped_total", "decision records this process lost (the journal could not be written)", () => parts.decisionLog.stats.dropped);
  gauge("bulkhead_audit_import_failures_total", "times the journal could not be moved into the table (store locked or failing); the journal kept the records", () =>
    parts.decisionLog.stats.importFailures,
  );
  gauge("bulkhead_store_revision", "newest store revision this process has seen", () => parts.tracker.revision);

  return {
    registry,
    decisions: new Counter({ name: "bulkhead_decisions_total", help: "decisions answered", labelNames: ["allow"], registers: [registry] }),
    decisionErrors: new Counter({ name: "bulkhead_decision_errors_total", help: "decision calls that failed", labelNames: ["code"], registers: [registry] }),
    billingEvents: new Counter({
      name: "bulkhead_billing_events_total",
      help: "Stripe webhook deliveries by outcome (applied, duplicate, stale, unmapped, unhandled, bad_signature, failed)",
      labelNames: ["outcome"],
      registers: [registry],
    }),
  };
}
