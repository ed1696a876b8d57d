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

/**
 * Lists every subscription from the Stripe API, compares it with the local
 * mirror and (unless dryRun) repairs the drift in one write, audited. The
 * repaired objects' watermarks move to now, so an older event still in
 * flight cannot undo the repair.
 */
export async function reconcileSubscriptions(
  deps: { writer: RevisionWriter; billing: SqliteBillingStore; projector: BillingProjector },
  stripe: Stripe,
  options: { dryRun: boolean; now: number; actor: string },
): Promise<ReconcileReport> {
  // Events applied after listing began are newer than the listing: the
  // repair must not overwrite them.
  const listedAt = options.now;
  const remote: SubscriptionFacts[] = [];
  for await (const subscription of stripe.subscriptions.list({ status: "all", limit: 100 })) {
    remote.push(subscriptionFacts(subscription as unknown as Record<string, unknown>));
  }
  const drift: Drift[] = [];
  const unmapped: string[] = [];
  const repairs: { facts: SubscriptionFacts; tenantId: string; plan: string | null }[] = [];
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
  if (!options.dryRun && repairs.length > 0) {
    deps.writer.write((tx) => {
      for (const { facts, tenantId, plan } of repairs) {
        if (!deps.billing.advance(facts.id, listedAt, `reconcile:${listedAt}`)) {
          drift.splice(drift.findIndex((d) => d.subscriptionId === facts.id), 1);
          continue;
        }
        deps.billing.putSubscription(tx, tenantId, facts, plan, options.now);
        deps.projector.recomputeTenant(tx, tenantId);
        deps.billing.audit(tx, {
          actor: options.actor, tenantId, object: `subscription:${facts.id}`, action: "billing.reconcile",
          reason: "drift_repair", source: "cli", result: JSON.stringify(drift.find((d) => d.subscriptionId === facts.id)?.changes),
        });
      }
    });
  }
  return { checked: remote.length, drift, unmapped, applied: !options.dryRun && repairs.length > 0 };
}
