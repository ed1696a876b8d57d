import type Stripe from "stripe";
import type { RevisionWriter } from "../store/revision-writer.js";
import type { BillingProjector } from "./billing-projector.js";
import type { SqliteBillingStore } from "./billing-store.js";
import { subscriptionFacts, type SubscriptionFacts } from "./stripe-objects.js";

export interface Drift {
  subscriptionId: string;
  tenantId: string;
  /** field -> [mirror, Stripe] */
  changes: Record<string, [unknown, unknown]>;
}

export interface ReconcileReport {
  checked: number;
  drift: Drift[];
  unmapped: string[];
  applied: boolean;
}

/** Every subscription the Stripe API lists, as the facts the mirror keeps. */
export async function listSubscriptionFacts(stripe: Stripe): Promise<SubscriptionFacts[]> {
  const remote: SubscriptionFacts[] = [];
  for await (const subscription of stripe.subscriptions.list({ status: "all", limit: 100 })) {
    remote.push(subscriptionFacts(subscription as unknown as Record<string, unknown>));
  }
  return remote;
}

export interface ReconcileDeps {
  writer: RevisionWriter;
  billing: SqliteBillingStore;
  projector: BillingProjector;
}

/** Who repairs and why, as the audit row records it. */
export interface RepairActor {
  actor: string;
  reason: string;
  source: string;
}

/** The listed subscriptions compared with the mirror as it is now. */
export function findDrift(deps: ReconcileDeps, remote: SubscriptionFacts[]): { drift: Drift[]; unmapped: string[]; repairs: Repair[] } {
  const drift: Drift[] = [];
  const unmapped: string[] = [];
  const repairs: Repair[] = [];
  for (const facts of remote) {
    const tenantId = deps.projector.tenantFor(facts.customerId, facts.tenantHint);
    if (!tenantId) {
      unmapped.push(facts.id);
      continue;
    }
    const plan = deps.projector.planOf(facts);
    const mirror = deps.billing.tenantSubscriptions(tenantId).find((s) => s.id === facts.id);
    const seats = facts.items.filter((i) => i.lookupKey === "seats").reduce((n, i) => n + i.quantity, 0);
    const pairs: Record<string, [unknown, unknown]> = {
      status: [mirror?.status ?? null, facts.status],
      plan: [mirror?.planCode ?? null, plan],
      cancel_at_period_end: [mirror?.cancelAtPeriodEnd ?? null, facts.cancelAtPeriodEnd],
      current_period_end: [mirror?.currentPeriodEnd ?? null, facts.currentPeriodEnd],
      seats: [mirror?.seats ?? null, seats],
    };
    const changes = Object.fromEntries(Object.entries(pairs).filter(([, [a, b]]) => a !== b));
    if (Object.keys(changes).length === 0) continue;
    drift.push({ subscriptionId: facts.id, tenantId, changes });
    repairs.push({ facts, tenantId, plan });
  }
  return { drift, unmapped, repairs };
}

interface Repair {
  facts: SubscriptionFacts;
  tenantId: string;
  plan: string | null;
}

/**
 * Recomputes the drift of `remote` (listed at `listedAt`) against the mirror
 * and repairs it in one write, audited per subscription. The repaired
 * objects' watermarks move to listedAt, so an older event still in flight
 * cannot undo the repair, and an event applied after listing began is not
 * overwritten (that subscription drops out of the drift). Deterministic in
 * its arguments and the store, so every sidecar applying it as a command
 * makes the same repair.
 */
export function repairDrift(deps: ReconcileDeps, remote: SubscriptionFacts[], listedAt: number, by: RepairActor): ReconcileReport {
  const { drift, unmapped, repairs } = findDrift(deps, remote);
  if (repairs.length > 0) {
    deps.writer.write((tx) => {
      for (const { facts, tenantId, plan } of repairs) {
        if (!deps.billing.advance(facts.id, listedAt, `reconcile:${listedAt}`)) {
          drift.splice(drift.findIndex((d) => d.subscriptionId === facts.id), 1);
          continue;
        }
        deps.billing.putSubscription(tx, tenantId, facts, plan, listedAt);
        deps.projector.recomputeTenant(tx, tenantId);
        deps.billing.audit(tx, {
          actor: by.actor, tenantId, object: `subscription:${facts.id}`, action: "billing.reconcile",
          reason: by.reason, source: by.source, result: JSON.stringify(drift.find((d) => d.subscriptionId === facts.id)?.changes),
        });
      }
    });
  }
  return { checked: remote.length, drift, unmapped, applied: drift.length > 0 };
}

/**
 * Lists every subscription from the Stripe API, compares it with the local
 * mirror and (unless dryRun) repairs the drift in one write (single-node CLI).
 */
export async function reconcileSubscriptions(
  deps: ReconcileDeps,
  stripe: Stripe,
  options: { dryRun: boolean; now: number; actor: string },
): Promise<ReconcileReport> {
  const remote = await listSubscriptionFacts(stripe);
  if (options.dryRun) {
    const { drift, unmapped } = findDrift(deps, remote);
    return { checked: remote.length, drift, unmapped, applied: false };
  }
  return repairDrift(deps, remote, options.now, { actor: options.actor, reason: "drift_repair", source: "cli" });
}
